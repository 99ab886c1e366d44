"""``mrisr <stage> [<step>] ...``: the entry point every rule calls, one command per stage (or stage step).

The commands and their options are declared in :mod:`mrisr.commands`; this module builds the parser from them and
dispatches: each command calls its function with its options as keyword arguments (a group's options as one object).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import os
import shlex
import sys

from mrisr.commands import COMMANDS, GROUPS, STAGES
from mrisr.errors import NO_ROOM, MrisrError, printable

#: Libraries whose debug log (``-v``) holds secrets: botocore logs request headers (AWS key id, session token).
QUIET_LIBRARIES = ("botocore", "boto3", "s3transfer", "urllib3")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mrisr", description=__doc__.split("\n\n")[0])
    p.add_argument("-v", "--verbose", action="store_true")
    stages = p.add_subparsers(dest="stage", required=True)
    steps: dict[str, argparse._SubParsersAction] = {}
    for names, (target, text, options) in COMMANDS.items():
        if len(names) == 1:
            s = stages.add_parser(names[0], help=text)
        else:
            if names[0] not in steps:
                stage = stages.add_parser(names[0], help=STAGES[names[0]])
                steps[names[0]] = stage.add_subparsers(dest="step", required=True)
            s = steps[names[0]].add_parser(names[1], help=text)
        for option in options:
            s.add_argument(option.flag, **option.arguments())
        s.set_defaults(target=target)
    return p


def _grouped(options: dict) -> dict:
    """``group.field`` options gathered into the group's object (:data:`mrisr.commands.GROUPS`)."""
    fields: dict[str, dict] = {}
    for name in [n for n in options if "." in n]:
        group, _, field = name.partition(".")
        fields.setdefault(group, {})[field] = options.pop(name)
    for group, values in fields.items():
        module, _, cls = GROUPS[group].partition(":")
        options[group] = getattr(importlib.import_module(module), cls)(**values)
    return options


def main(argv: list[str] | None = None) -> int:
    options = vars(parser().parse_args(argv))
    command = " ".join(filter(None, (options.pop("stage"), options.pop("step", None))))
    logging.basicConfig(level=logging.DEBUG if options.pop("verbose") else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for library in QUIET_LIBRARIES:
        logging.getLogger(library).setLevel(logging.WARNING)
    if "SLURM_JOB_ID" in os.environ:  # which cluster job wrote this log, for accounting and post-mortems
        logging.getLogger("mrisr").info("SLURM job %s on %s", os.environ["SLURM_JOB_ID"],
                                        os.environ.get("SLURMD_NODENAME", "?"))
    module, _, function = options.pop("target").partition(":")
    try:
        stage = getattr(importlib.import_module(module), function)
        options = _grouped(options)
        if "command_line" in inspect.signature(stage).parameters:  # it records how it was called (BIDS sidecars)
            options["command_line"] = shlex.join(["mrisr", *(sys.argv[1:] if argv is None else argv)])
        stage(**options)
    except MrisrError as exc:
        print(f"mrisr {command}: error: {printable(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in NO_ROOM:
            raise
        print(f"mrisr {command}: error: {exc.filename or 'an output'}: could not be written ({exc.strerror}). "
              "Fix: free space (or quota) on that file system, then rerun", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
