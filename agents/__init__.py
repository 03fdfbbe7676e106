"""The translator, entity-aligner and verifier agents: plain callables over pydantic models."""
