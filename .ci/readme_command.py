"""Print the shell command that README.md gives under a heading.

    python3 .ci/readme_command.py "Documentation"

prints the one fenced code block (```) of the README section with that
heading (any level), so that CI runs the README's command as a reader copies
it, and the two cannot drift apart. Fails if the section has no such block or
more than one.
"""

import re
import sys
from pathlib import Path


def section_blocks(text, heading):
    """The fenced code blocks of the section titled `heading`."""
    lines = text.splitlines()
    start = level = None
    for i, line in enumerate(lines):
        m = re.match(r"(#+)\s+(.*?)\s*$", line)
        if m and m.group(2) == heading:
            start, level = i + 1, len(m.group(1))
            break
    if start is None:
        raise SystemExit(f"README.md has no heading {heading!r}")
    blocks, block = [], None
    for line in lines[start:]:
        if block is None:
            m = re.match(r"#+\s", line)
            if m and len(line) - len(line.lstrip("#")) <= level:
                break  # the next section at the same level or above
            if line.startswith("```"):
                block = []
        elif line.startswith("```"):
            blocks.append("\n".join(block))
            block = None
        else:
            block.append(line)
    return blocks


def main(argv):
    if len(argv) != 2:
        raise SystemExit(__doc__)
    readme = Path(__file__).resolve().parent.parent / "README.md"
    blocks = section_blocks(readme.read_text(encoding="utf-8"), argv[1])
    if len(blocks) != 1:
        raise SystemExit(
            f"README.md's section {argv[1]!r} has {len(blocks)} code blocks, expected one"
        )
    print(blocks[0])


if __name__ == "__main__":
    main(sys.argv)
