"""Planted meaning errors through the real HTTP path: how many wrong answers reach accepted.jsonl.

    python bench/meaning_planted.py [--review off uncertain] [--out DIR]

The planted set (tests/agents/planted.py, fixtures in tests/fixtures/meaning/): 31 held-out
stockmark records with hand translations into en and zh (14 also into ko). Each run gives
every (record, target) pair one kind (swapped, widened, cut_short, substituted, dropped, or
clean), rotating so that across six runs every pair gets every kind it can take; the local
OpenAI-compatible server answers the planted answer first and the correct one after feedback,
and plays the reviewer (`--review uncertain|all`). A seventh run has only clean answers (LLM
calls per record, false rejections). Prints one table per review mode.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--review", nargs="+", default=["off", "uncertain"])
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    import word_tokenizers
    from agents.aligner import align
    from graphs.translate import main as translate
    from replay_server import LocalOpenAIServer
    from tests.agents.planted import KINDS, MeaningHandler, donors_of, load, plant

    records, pairs = load()
    targets = sorted({p.target for p in pairs})
    tok = {t: word_tokenizers.get(t).tokenize for t in targets}
    donors = donors_of(pairs, tok)
    expected = {}
    for pair in pairs:
        al = align(pair.correct, pair.record, tok[pair.target])
        expected[(pair.record.id, pair.target)] = (
            al.text,
            sorted((p.start, p.end, p.text) for p in al.projected.values()),
        )
    out_root = args.out or Path(tempfile.mkdtemp(prefix="meaning-"))
    schedule = [*KINDS, "clean"]
    results: dict[str, Any] = {}
    for mode in args.review:
        table: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        calls = Counter()
        wall = 0.0
        for rotation in range(len(schedule) + 1):
            assigned: dict[tuple[str, str], tuple[str, str]] = {}
            for k, pair in enumerate(pairs):
                kind = "clean" if rotation == len(schedule) else schedule[(k + rotation) % len(schedule)]
                answer = pair.correct if kind == "clean" else plant(kind, pair, tok[pair.target], donors)
                if answer is None:
                    kind, answer = "clean", pair.correct
                assigned[(pair.record.id, pair.target)] = (kind, answer)
            run_dir = out_root / f"{mode}-{rotation}"
            groups = {"main": [t for t in targets if t != "ko"], "ko": ["ko"] if "ko" in targets else []}
            for name, tgts in groups.items():
                if not tgts:
                    continue
                ids = sorted({p.record.id for p in pairs if p.target in tgts and all(
                    (p.record.id, t) in assigned for t in tgts)})
                inp = run_dir / f"input-{name}.jsonl"
                inp.parent.mkdir(parents=True, exist_ok=True)
                inp.write_text("".join(records[i].model_dump_json() + "\n" for i in ids), encoding="utf-8")
                from agents.markers import mark

                handler = MeaningHandler(
                    {
                        (mark(records[i].text, records[i].spans), t): (
                            assigned[(i, t)][1],
                            next(p.correct for p in pairs if p.record.id == i and p.target == t),
                        )
                        for i in ids
                        for t in tgts
                    }
                )
                out = run_dir / name
                t0 = time.perf_counter()
                with LocalOpenAIServer(handler) as server:
                    rc = translate(
                        ["--input", str(inp), "--source", "ja", "--target", *tgts, "--out", str(out),
                         "--base-url", server.base_url, "--model", "planted", "--review", mode,
                         "--no-progress", "--log-level", "ERROR"],
                        environ={"OPENAI_API_KEY": "sk-test"},
                    )
                wall += time.perf_counter() - t0
                if rc != 0:
                    raise SystemExit(f"translate exited {rc} for {run_dir}")
                for t in tgts:
                    for status in ("accepted", "rejected"):
                        for line in (out / t / f"{status}.jsonl").read_text(encoding="utf-8").splitlines():
                            obj = json.loads(line)
                            rid = obj["meta"]["source_id"] if status == "accepted" else obj["key"]
                            kind = assigned[(rid, t)][0]
                            usage = obj["meta"]["usage"] if status == "accepted" else obj["usage"]
                            rusage = (obj["meta"] if status == "accepted" else obj).get("review_usage") or {}
                            calls["pairs"] += 1
                            calls[f"pairs:{kind}"] += 1
                            calls["translate"] += usage.get("calls", 0)
                            calls["review"] += rusage.get("calls", 0)
                            calls[f"translate:{kind}"] += usage.get("calls", 0)
                            calls[f"review:{kind}"] += rusage.get("calls", 0)
                            if status == "rejected":
                                table[(kind, t)]["rejected"] += 1
                                continue
                            got = (obj["text"], sorted((s["start"], s["end"], s["text"]) for s in obj["spans"]))
                            ok = got == expected[(rid, t)]
                            table[(kind, t)]["repaired" if ok and kind != "clean" else
                                             "accepted" if ok else "accepted_wrong"] += 1
        results[mode] = {"table": {f"{k}/{t}": dict(v) for (k, t), v in sorted(table.items())},
                         "calls": dict(calls), "wall_s": round(wall, 1)}
        print(f"\n## --review {mode}\n")
        print("| kind | target | planted | caught and repaired | rejected | accepted wrongly |")
        print("|---|---|---:|---:|---:|---:|")
        for (kind, t), c in sorted(table.items()):
            if kind == "clean":
                continue
            n = sum(c.values())
            print(f"| {kind} | {t} | {n} | {c['repaired']} | {c['rejected']} | {c['accepted_wrong']} |")
        wrong = [c for (k, _), c in table.items() if k != "clean"]
        n_wrong = sum(sum(c.values()) for c in wrong)
        acc_wrong = sum(c["accepted_wrong"] for c in wrong)
        clean = [c for (k, _), c in table.items() if k == "clean"]
        n_clean = sum(sum(c.values()) for c in clean)
        rej_clean = sum(c["rejected"] + c["accepted_wrong"] for c in clean)
        print(f"\nwrong answers accepted: {acc_wrong}/{n_wrong} = {acc_wrong / max(1, n_wrong):.1%}")
        print(f"correct answers rejected (or changed): {rej_clean}/{n_clean} = {rej_clean / max(1, n_clean):.1%}")
        print(f"translator calls per pair, clean answers: {calls['translate:clean'] / max(1, calls['pairs:clean']):.3f}; "
              f"planted: {(calls['translate'] - calls['translate:clean']) / max(1, calls['pairs'] - calls['pairs:clean']):.3f}")
        print(f"reviewer calls per pair, clean: {calls['review:clean'] / max(1, calls['pairs:clean']):.3f}; "
              f"planted: {(calls['review'] - calls['review:clean']) / max(1, calls['pairs'] - calls['pairs:clean']):.3f}")
        print(f"wall {wall:.1f}s for {calls['pairs']} pairs; outputs under {out_root}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
