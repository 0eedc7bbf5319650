"""`python -m comparisons.report FOLDER`: rebuild report.md, the figures, the README's generated blocks and
docs/implementations.md (from the registry)."""
import sys
from pathlib import Path

from comparisons.report import document, front_page, implementations_page


def main(argv):
    """`python -m comparisons.report FOLDER`: rebuild the report (the README block of results/, the docs page); exit status."""
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("error: usage: python -m comparisons.report RESULTS_FOLDER (a folder written by run_all.py)",
              file=sys.stderr)
        return 2
    try:
        print(document.build(argv[0]))
        readme = front_page.sync_readme(argv[0])
    except (FileNotFoundError, KeyError) as exc:  # a folder not written by run_all.py, or by an older version
        print(f"error: {argv[0]} lacks what the report is drawn from ({type(exc).__name__}: {exc}); "
              "point at a folder written by run_all.py, or run the study again", file=sys.stderr)
        return 2
    if readme:
        print(readme)
    page = implementations_page.sync(argv[0])
    if page:
        print(page)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
