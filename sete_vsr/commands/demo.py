"""``sete-vsr demo``: a local web page to upscale a clip and compare the result with bicubic (Gradio).

Examples::

    sete-vsr demo                                   # bicubic and the baselines whose checkpoints are found
    sete-vsr demo --model examples/tiny-sete-vsr    # and a SeTe-VSR model
    sete-vsr demo --host 0.0.0.0 --port 7860        # reachable from other machines

Needs the ``demo`` extra (``pip install 'sete-vsr[demo]'``). Samples are the clips of the shared data folder
(``$SETE_VSR_SHARED``, else ``shared/`` beside a source checkout) when there is one; its ``weights`` folder is searched
for baseline checkpoints too.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="SeTe-VSR pipeline folder or Hub id offered on the page (see `sete-vsr init`)")
    parser.add_argument("--device", help="torch device, e.g. cuda, cpu (default: cuda when available)")
    parser.add_argument("--weights-dir", action="append", default=[],
                        help="folder with baseline checkpoints (repeatable)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")


def run(args: argparse.Namespace) -> int:
    import importlib.util

    from ..errors import SeteVSRError

    if importlib.util.find_spec("gradio") is None:
        raise SeteVSRError("the demo needs Gradio: pip install 'sete-vsr[demo]' (or pip install gradio)")
    from ..demo.app import build_app
    from ..demo.processing import shared_folder
    from ..weight_dirs import set_weight_dirs

    shared = shared_folder()
    set_weight_dirs([*args.weights_dir, *([shared / "weights"] if shared is not None else [])])
    app = build_app(model=args.model, device=args.device)
    print(f"sete-vsr demo on http://{args.host}:{args.port} (Ctrl+C to stop)")
    app.queue().launch(server_name=args.host, server_port=args.port, share=False, quiet=True)
    return 0
