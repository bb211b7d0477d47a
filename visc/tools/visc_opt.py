"""`visc-opt`: xdsl-opt/mlir-opt style pass driver over visc IR.

    visc-opt model.mlir -p 'vision-fold-batch-norm,lower-vision-to-loops' [--print-ir-after-all]
    visc-opt --weights model.npz ...   # give passes that fold constants the weight values

Reads a file or stdin, prints the resulting IR (or a target's output with -t). Errors are
reported as `visc-opt: error:` lines with their location, never as tracebacks.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence

from xdsl.utils.exceptions import (
    DiagnosticException,
    ParseError,
    PassFailedException,
    VerifyException,
)
from xdsl.xdsl_opt_main import xDSLOptMain

from visc.errors import UsageError, ViscError
from visc.tools.checks import writable_output
from visc.weights import WeightStore, use_weights


class ViscOptMain(xDSLOptMain):
    version_format = "visc-opt (xdsl {xdsl_version})"

    def __init__(self, args: Sequence[str] | None = None):
        super().__init__(description="visc modular optimizer driver", args=args)

    def register_all_dialects(self) -> None:
        super().register_all_dialects()
        from visc.dialects.vision import Vision

        if "vision" not in self.ctx.registered_dialect_names:
            self.ctx.register_dialect("vision", lambda: Vision)

    def register_all_passes(self) -> None:
        super().register_all_passes()
        from visc.passes import available_passes

        for name, factory in available_passes().items():
            if name not in self.available_passes:
                self.register_pass(name, factory)

    def register_all_targets(self) -> None:
        super().register_all_targets()
        from visc.universe import VISC_UNIVERSE

        for name, factory in VISC_UNIVERSE.all_targets.items():
            self.available_targets.setdefault(name, factory)

    def setup_pipeline(self) -> None:
        """Name an unknown pass and the registered one closest to it, instead of xDSL's
        ``ValueError: Unrecognized passes``."""
        for name in pass_names(self.args.passes):
            if name not in self.available_passes:
                close = difflib.get_close_matches(name, list(self.available_passes), n=1)
                hint = f"; did you mean '{close[0]}'?" if close else " (visc-opt --help lists the passes)"
                raise UsageError(f"-p {self.args.passes}: unknown pass '{name}'{hint}")
        super().setup_pipeline()

    def register_all_arguments(self, arg_parser: argparse.ArgumentParser) -> None:
        super().register_all_arguments(arg_parser)
        arg_parser.add_argument("--print-ir-after-all", action="store_true",
                                help="print the IR after every pass (alias of --print-between-passes)")
        arg_parser.add_argument("--weights", help="weight store (.npz) for passes that evaluate constants")
        arg_parser.add_argument("--save-weights", help="write the weight store after the passes ran (.npz)")


def pass_names(pipeline: str) -> list[str]:
    """The pass names of a ``-p`` pipeline (``a,b{opt=1 x=2},c``): options may hold commas."""
    names, depth, current = [], 0, ""
    for ch in pipeline:
        depth += (ch == "{") - (ch == "}")
        if ch == "," and depth == 0:
            names.append(current)
            current = ""
        else:
            current += ch
    names.append(current)
    return [n.split("{", 1)[0].strip() for n in names if n.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    try:
        opt = ViscOptMain(args=argv)
        if opt.args.print_ir_after_all:
            opt.args.print_between_passes = True
            opt.setup_pipeline()
        if opt.args.save_weights:
            writable_output(opt.args.save_weights, "--save-weights")
        store = WeightStore.load(opt.args.weights) if opt.args.weights else None
        with use_weights(store):
            opt.run()
        if opt.args.save_weights and store is not None:
            store.save(opt.args.save_weights)
    except (ParseError, VerifyException, DiagnosticException, PassFailedException, ViscError) as e:
        sys.stdout.flush()
        print(f"visc-opt: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # the input file (or -o's) cannot be opened
        name = f" '{e.filename}'" if e.filename else ""
        print(f"visc-opt: error: cannot open{name}: {e.strerror or e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
