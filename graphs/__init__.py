"""The LangGraph translation graph, its batch runner and the CLI `python -m graphs.translate`."""
