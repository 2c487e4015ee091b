"""Benchmarks: quality and speed measurements kept out of the timed test suite.

Each script writes its figures under ``benchmarks/results/`` and prints a table.
"""


def write_results(out, stem: str, quick: bool, results: dict, markdown: str) -> None:
    """Write ``<stem>.json`` and ``<stem>.md`` (``<stem>_quick.*`` for --quick) and print the md.

    Every benchmark ends this way, so the figures quoted in notes live in the repository.
    """
    import json
    from pathlib import Path

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"{stem}_quick" if quick else stem
    (out / f"{name}.json").write_text(json.dumps(results, indent=2))
    (out / f"{name}.md").write_text(markdown)
    print(markdown)
