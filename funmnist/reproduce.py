"""Rerun the runs whose figures the README shows, then regenerate its tables and img_src/.

    python -m funmnist.reproduce              # every committed run, one after another
    python -m funmnist.reproduce GAN UNIT     # only the runs of these folders
    python -m funmnist.reproduce --list       # print the commands, run nothing

The commands are those recorded in the committed `<Folder>/samples/**/metrics.json` files, so what a
table claims is checked by the command that made it. Hours on a 2-core CPU; minutes on a GPU.
"""

import argparse
import json
import shlex
import subprocess
import sys

from . import img_src, readme
from .cli import REPO_ROOT, fail


def commands() -> dict[str, list[str]]:
    """Each folder's recorded commands, in order, each once (one run may write several metrics.json)."""
    found: dict[str, list[str]] = {}
    for path in sorted(REPO_ROOT.glob("*/samples/**/metrics.json")):
        folder = path.relative_to(REPO_ROOT).parts[0]
        command = json.loads(path.read_text())["command"]
        if command not in found.setdefault(folder, []):
            found[folder].append(command)
    return found


def main() -> None:
    p = argparse.ArgumentParser(description="Rerun the README's runs and regenerate its tables and img_src/.")
    p.add_argument("folders", nargs="*", metavar="FOLDER", help="model folders (default: all)")
    p.add_argument("--list", action="store_true", help="print the commands and run nothing")
    args = p.parse_args()
    found = commands()
    if unknown := sorted(set(args.folders) - set(found)):
        p.error(f"no committed runs in {unknown[0]}/; the folders are {', '.join(found)}")
    chosen = [c for folder in (args.folders or found) for c in found[folder]]
    for i, command in enumerate(chosen, 1):
        print(f"[{i}/{len(chosen)}] {command}", flush=True)
        if args.list:
            continue
        words = shlex.split(command)
        if subprocess.run([sys.executable, *words[1:]], cwd=REPO_ROOT).returncode:
            fail(f"{command} failed; the runs before it are done, the tables not yet regenerated", status=1)
    if not args.list:
        for path, text in readme.pages().items():
            path.write_text(text)
        img_src.draw(img_src.manifest())
        print("the results tables of README.md, benchmarks/README.md and the model pages, and img_src/, regenerated")


if __name__ == "__main__":
    main()
