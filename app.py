"""Launch HoloCine Studio: `python app.py` serves it on 127.0.0.1:7860 (the toy-world model unless weights are set)."""

from __future__ import annotations

import argparse
import logging

from engine.errors import HoloCineError
from engine.lora import parse_lora
from engine.memory import MEMORY_MODES
from storage import StorageError
from studio.cli import add_worker_options, check_locations, worker_settings
from studio.services import DATA_DIR_ENV, StudioSettings, build_services
from studio.ui import build_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="HoloCine Studio")
    parser.add_argument(
        "--weights",
        help="Wan2.2-T2V-A14B diffusers folder or hub id (default: $HOLOCINE_WEIGHTS, else the toy-world model)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument(
        "--data-dir", help=f"projects, media and the database (default: ${DATA_DIR_ENV} or ~/.holocine-studio)"
    )
    parser.add_argument("--db-url", help="any SQLAlchemy URL (default: sqlite in the data directory)")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--memory", default="auto", choices=MEMORY_MODES, help="GPU memory preset (low: 24 GB cards); see README"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile each transformer block")
    parser.add_argument(
        "--lora",
        action="append",
        default=[],
        metavar="NAME=HIGH[,LOW]",
        help="load a Wan2.2 A14B LoRA pair (e.g. a Lightning draft LoRA); each render picks which are on. Repeatable",
    )
    add_worker_options(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    try:
        settings = StudioSettings.from_args(
            args.data_dir,
            args.db_url,
            args.weights,
            args.device,
            memory=args.memory,
            compile_blocks=args.compile,
            loras=tuple(parse_lora(text) for text in args.lora),
            **worker_settings(args),
        )
        check_locations(settings)  # --data-dir and --db-url before the model loads: seconds, not minutes
        services = build_services(settings)
        services.start_workers()  # run queued jobs, also those left queued before a restart
    except (HoloCineError, StorageError, OSError) as error:  # bad weights, LoRAs, folders, URL, GPUs: no traceback
        parser.exit(2, f"error: {' '.join(str(error).split())}\n")
    demo = build_app(services)
    try:
        demo.queue(default_concurrency_limit=4).launch(
            server_name=args.host, server_port=args.port, allowed_paths=[str(services.settings.data_dir)]
        )
    except OSError as error:  # the port is taken, the host cannot be bound
        parser.exit(2, f"error: {' '.join(str(error).split())}\n")


if __name__ == "__main__":
    main()
