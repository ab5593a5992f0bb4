"""``selfplay-gym eval``: score a model (optionally with a LoRA adapter) on the papers' benchmarks.

    selfplay-gym eval --model Qwen/Qwen3-4B-Base --benchmarks math500,gsm8k,mmlu_pro \\
        --max-new-tokens 4096 --output-dir runs/eval/qwen3-4b-base
    selfplay-gym eval --model DIR --adapter runs/selfplay/checkpoints/.../solver \\
        --benchmarks gsm8k --data gsm8k=gsm8k_test.jsonl --samples 8 --k 1,8
    selfplay-gym eval --model DIR --benchmarks humaneval --data humaneval=HumanEval.jsonl \\
        --samples 10 --k 1,10 --code-timeout 10
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path

from selfplay_gym.eval.benchmarks import BENCHMARKS, GENERAL_BENCHMARKS, MATH_BENCHMARKS
from selfplay_gym.eval.code_benchmarks import CODE_BENCHMARKS

KNOWN = {**BENCHMARKS, **CODE_BENCHMARKS}
GROUPS = {
    "math": MATH_BENCHMARKS,
    "general": GENERAL_BENCHMARKS,
    "all": MATH_BENCHMARKS + GENERAL_BENCHMARKS,
    "code": tuple(CODE_BENCHMARKS),
}


def _names(text: str) -> list[str]:
    names: list[str] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        for name in GROUPS.get(part, (part,)):
            if name not in KNOWN:
                raise argparse.ArgumentTypeError(
                    f"unknown benchmark {name!r}; known: {', '.join(KNOWN)} "
                    "(or the groups math, general, all, code)"
                )
            if name not in names:
                names.append(name)
    if not names:
        raise argparse.ArgumentTypeError("no benchmark named")
    return names


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"takes seconds, like 10, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text!r}")
    return value


def _ks(text: str) -> list[int]:
    try:
        ks = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k takes integers like 1,4,16, got {text!r}") from None
    if not ks or min(ks) < 1:
        raise argparse.ArgumentTypeError(f"--k values must be >= 1, got {text!r}")
    return ks


def _data(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"--data takes NAME=PATH, got {text!r}")
    return name.strip(), path.strip()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="selfplay-gym eval",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", help='hub id or local directory of a causal LM; "tiny": the embedded one')
    p.add_argument("--adapter", default=None, help="a LoRA adapter directory (save_adapter output)")
    p.add_argument(
        "--benchmarks",
        type=_names,
        default=None,
        help=f"comma-separated: {', '.join(KNOWN)}; or math, general, all, code",
    )
    p.add_argument(
        "--data",
        type=_data,
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="read benchmark NAME from a local .jsonl/.json/.parquet/.csv or dir",
    )
    p.add_argument("--samples", type=int, default=1, help="completions per question")
    p.add_argument("--k", type=_ks, default=None, help="pass@k/maj@k to report, e.g. 1,4")
    p.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="0 = greedy (default with one sample); 0.6 by default with samples > 1",
    )
    p.add_argument("--top-p", type=float, default=None, help="1.0 greedy, 0.95 when sampling")
    p.add_argument(
        "--max-new-tokens", type=int, default=4096, help="R-Zero: 4096 math, 8192 general"
    )
    p.add_argument("--batch-size", type=int, default=32, help="questions per generate call")
    p.add_argument("--limit", type=int, default=None, help="first N questions of each benchmark")
    p.add_argument(
        "--subsample",
        type=int,
        default=None,
        help="N random questions per benchmark (R-Zero: 1000 for the general ones)",
    )
    p.add_argument("--seed", type=int, default=0, help="for --subsample and GPQA option order")
    p.add_argument("--output-dir", default=None, help="default: runs/eval/<model name>")
    p.add_argument("--check-timeout", type=float, default=10.0, help="seconds per math check")
    p.add_argument("--code-timeout", type=_seconds, default=10.0,
                   help="seconds per sandboxed program run (code benchmarks)")
    p.add_argument("--code-isolation", choices=["namespace", "none"], default="namespace",
                   help="sandbox isolation; none where namespaces are unavailable (limits only)")
    p.add_argument("--engine", choices=["hf", "vllm", "openai"], default="hf",
                   help="generate with transformers, vLLM in this process, or a server at --base-url")
    p.add_argument("--base-url", default="", help="the server's API root for --engine openai")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None, help="float32, bfloat16, ... (bf16 on CUDA)")
    p.add_argument("--max-context", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    return p


ADAPTER = "evaluated"
"""The name the --adapter directory is loaded under (not "eval": peft would shadow nn.Module.eval)."""


def build_engine(args: argparse.Namespace):
    """The generation engine ``--engine`` names, on ``--model`` ("tiny" is the embedded model)."""
    model = args.model
    if model in ("tiny", "tiny-code"):
        from selfplay_gym.agents.tiny import embedded_model_dir

        model = str(embedded_model_dir(model))
    if args.engine == "vllm":
        from selfplay_gym.agents.vllm import VLLMBackend

        return VLLMBackend.launch(model, dtype=args.dtype, max_model_len=args.max_context, max_loras=1)
    if args.engine == "openai":
        from selfplay_gym.agents.openai_api import OpenAIBackend

        if not args.base_url:
            raise SystemExit("--engine openai needs --base-url, e.g. http://127.0.0.1:8000/v1")
        return OpenAIBackend(args.base_url, None)
    from selfplay_gym.agents.hf import HFBackend

    return HFBackend(model, device=args.device, dtype=args.dtype, max_context=args.max_context,
                     generation_batch_size=args.batch_size * args.samples)


def list_benchmarks() -> None:
    for spec in KNOWN.values():
        config = spec.config or "-"
        print(
            f"{spec.name:14s} {spec.domain:8s} {spec.hub_id:35s} {config:13s} {spec.split:6s}"
            f" {spec.notes}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list:
        list_benchmarks()
        return 0
    if not args.model or not args.benchmarks:
        build_parser().error("--model and --benchmarks are required (or --list)")
    data = dict(args.data)
    unknown = sorted(set(data) - set(args.benchmarks))
    if unknown:
        build_parser().error(f"--data names {unknown}, which are not in --benchmarks")
    sampled = args.samples > 1
    temperature = args.temperature if args.temperature is not None else (0.6 if sampled else 0.0)
    top_p = args.top_p if args.top_p is not None else (0.95 if temperature > 0 else 1.0)
    ks = args.k or sorted({1, args.samples})
    output_dir = args.output_dir or str(
        Path("runs/eval") / re.sub(r"[^\w.-]+", "_", args.model.strip("/"))
    )

    from selfplay_gym.eval.benchmarks import load_benchmark
    from selfplay_gym.eval.checking import AnswerChecker
    from selfplay_gym.eval.code_checking import CodeChecker
    from selfplay_gym.eval.report import markdown_table
    from selfplay_gym.eval.runner import evaluate

    items = {
        name: load_benchmark(name, data.get(name), subsample=args.subsample, seed=args.seed)
        for name in args.benchmarks
    }
    backend = build_engine(args)
    adapter = None
    if args.adapter:
        adapter = ADAPTER
        backend.load_adapter(adapter, Path(args.adapter).resolve())
    with AnswerChecker(args.check_timeout) as checker:
        results = evaluate(
            backend,
            items,
            adapter=adapter,
            samples=args.samples,
            k=ks,
            max_new_tokens=args.max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            batch_size=args.batch_size,
            output_dir=output_dir,
            limit=args.limit,
            progress=not args.no_progress,
            checker=checker,
            model=args.model if not args.adapter else f"{args.model} + {args.adapter}",
            code_checker=CodeChecker(args.code_timeout, isolation=args.code_isolation),
        )
    print(markdown_table(results))
    print(f"\nresults.json, results.md and records.jsonl in {output_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
