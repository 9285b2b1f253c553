"""The ``deepzoo`` command line: list, train, resume, eval, predict, export, serve, tour, data.

Every error the user can fix is printed as one line, ``deepzoo: error: ...``, with exit status 2
(3 when training diverged); never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from deepzoo import __version__
from deepzoo.errors import DeepzooError, TrainingDiverged
from deepzoo.report.format import format_metric as fmt_value
from deepzoo.report.format import table

EPILOG = """\
examples:
  deepzoo list                                   the recipes: figures reached beside the published ones
  deepzoo runs                                   the run folders under ./runs: settings, figure, state
  deepzoo tour                                   every recipe, quick preset, on data shipped in the package
  deepzoo train cnn-mnist                        full training (needs MNIST: deepzoo data fetch mnist)
  deepzoo train mlp-mnist --epochs 5 --set optim.lr=3e-4 --set model.hidden=[256,256]
  deepzoo train cnn-mnist --print-config         the keys --set accepts, with their defaults
  deepzoo resume runs/cnn-mnist-20261121-101500  continue a stopped run exactly where it was
  deepzoo predict RUN_DIR digit.png              classify an image with a trained run
  deepzoo export RUN_DIR --format onnx           RUN_DIR/model.onnx, checked with onnxruntime
  deepzoo serve RUN_DIR [RUN_DIR ...]            a web page per run and a JSON API, on 127.0.0.1:8000
  deepzoo experiment vanishing --quick           gradient vs distance for RNN, GRU, LSTM (plot + table)
  deepzoo experiment cnn-vs-rnn --quick          TextCNN vs recurrent nets: parameters, speed, accuracy
  deepzoo experiment seq-throughput --quick      LSTM vs Transformer: tokens/s as sequences grow
  deepzoo experiment degradation --quick         plain-20/56 vs ResNet-20/56: training and test error
  deepzoo experiment vit-vs-resnet --quick       ViT vs ResNet-20: same time, more and more images
  deepzoo experiment pretrain-finetune --quick   char GPT pre-trained on other text vs from scratch
  deepzoo experiment long-range --quick          LSTM vs Transformer: recall a token d positions back
  deepzoo experiment layernorm --quick           with and without LayerNorm over learning rates
  deepzoo experiment linear-collapse --quick     MLPs without activation collapse to one linear layer
  deepzoo experiment list                        every experiment: claim, note, verdict measured
  deepzoo explain receptive-field 7x7-vs-3x3     one 7x7 conv vs three 3x3: receptive field, weights
  deepzoo explain receptive-field resnet20-cifar10   each layer's output size, receptive field, parameters
  deepzoo explain graph "tanh(w*x + b)"           the computation graph: each node's value and gradient
"""


# --- commands -----------------------------------------------------------------------------------

def cmd_list(args) -> None:
    from deepzoo import figures
    if args.json:
        print(json.dumps(figures.list_json(), indent=1, ensure_ascii=False))
    else:
        print(figures.list_wide() if args.wide else figures.list_table())


def cmd_runs(args) -> None:
    from deepzoo import runs
    if args.compare:
        out = args.out or str(Path(args.folder) / "compare.png")
        print(runs.compare(args.compare, args.folder, out))
        print(f"plot: {out}")
        return
    text, found = runs.runs_table(args.folder)
    print(json.dumps(found, indent=1) if args.json else text)


def _int_in(lo: int, hi: int):
    """An argparse type: an integer from lo to hi (else argparse's usage line and this message, status 2)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text[:40]!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be an integer from {lo} to {hi}, got {value}")
        return value
    return parse


def _float_in(lo: float, hi: float):
    """An argparse type: a number in [lo, hi] (so not NaN)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text[:40]!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"must be a number in [{lo:g}, {hi:g}], got {value}")
        return value
    return parse


SEED = _int_in(0, 2**31 - 1)


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", metavar="DIR",
                   help="where datasets are found first (then $DEEPZOO_DATA, then the user cache)")


def cmd_train(args) -> None:
    from deepzoo import config as cfglib
    from deepzoo import recipes
    from deepzoo.train.run import train
    if args.device:
        if "train.device" not in cfglib.flatten(recipes.get(args.recipe).full_defaults()):
            raise DeepzooError(f"--device: {args.recipe} trains with its own loop on the CPU")
        args.set = [*args.set, f"train.device={args.device}"]
    if args.print_config:             # each key = its value, checked, with what it means and allows
        from deepzoo import schema
        recipe = recipes.get(args.recipe)
        rules = schema.for_recipe(recipe)
        cfg = cfglib.resolve(recipe.full_defaults(), recipe.presets, args.preset, args.config,
                             args.set, args.epochs, args.seed, schema=rules)
        print("\n".join(rules.table(cfg)))
        return
    summary = train(args.recipe, preset=args.preset, config_file=args.config, sets=args.set,
                    epochs=args.epochs, seed=args.seed, out=args.out, data_dir=args.data_dir,
                    progress=not args.quiet)
    print_summary(summary)


class _TrainHelp(argparse.Action):
    """``deepzoo train RECIPE --help``: the usual help, then RECIPE's config keys, each with its default,
    what it means and what it allows."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        name, recipe = getattr(namespace, "recipe", None), None
        if name:
            from deepzoo import recipes, schema
            try:
                recipe = recipes.get(name)
            except DeepzooError as e:
                parser.exit(2, f"deepzoo: error: {e}\n")
        parser.print_help()
        if recipe is not None:
            print(f"\nconfig keys of {recipe.name} (--set KEY=VALUE), with their defaults:")
            print("\n".join("  " + line for line in schema.for_recipe(recipe).table(recipe.full_defaults())))
        parser.exit()


def print_summary(s: dict) -> None:
    if "reference" not in s:          # a torchrun worker other than rank 0: rank 0 reports
        return
    ref = s["reference"]
    verdict = {True: "meets", False: "below", None: "n/a"}[s["meets_reference"]]
    print(f"{s['recipe']}: {s['metric']} {fmt_value(s['metric'], s['value'])} "
          f"(reference {fmt_value(s['metric'], ref['value'])}, {ref['source']}: {verdict}) "
          f"in {s['train_seconds']:.0f}s of training")


def cmd_resume(args) -> None:
    from deepzoo.train.run import resume
    print_summary(resume(args.run_dir, data_dir=args.data_dir, progress=not args.quiet))


def cmd_eval(args) -> None:
    from deepzoo.train.run import evaluate
    result = evaluate(args.run_dir, data_dir=args.data_dir)
    for key, value in result["results"].items():
        print(f"{key:12s} {fmt_value(key, value)}")
    ref = result["reference"]
    print(f"reference   {fmt_value(result['metric'], ref['value'])} {result['metric']} ({ref['source']})")


def cmd_predict(args) -> None:
    from deepzoo.train.run import predict
    options = {"length": args.length, "temperature": args.temperature, "top_k": args.top_k, "seed": args.seed,
               "beam": args.beam}
    for result in predict(args.run_dir, args.inputs, data_dir=args.data_dir, options=options):
        line = None if args.json else _predict_line(result)
        print(line if line is not None else json.dumps(result, ensure_ascii=False))   # else: the JSON


def _predict_line(result: dict) -> str | None:
    """The one-line human form of a predict result, by its kind; None for a kind without one."""
    if "text" in result:                                                       # generated text
        return result["input"] + result["text"]
    if "translation" in result:
        return result["translation"]
    if "probabilities" in result:
        top = sorted(result["probabilities"].items(), key=lambda kv: -kv[1])[:3]
        known = f"  label {result['label']} ({result['split']} node)" if "label" in result else ""
        return (f"{result['input']}: class {result['class']}  (" +
                ", ".join(f"{k}: {v:.3f}" for k, v in top) + ")" + known)
    if "policy" in result:                                                     # a tabular RL policy
        return result["policy"]
    if "mean_return" in result:                                                # RL episodes played
        return (f"{result['episodes']} episodes of {result['env']}: return {result['mean_return']:.3f} ± "
                f"{result['std_return']:.3f}, success rate {result['success_rate']:.3f}, "
                f"mean length {result['mean_length']:.1f}")
    if "wrote" in result:                                                      # generated images
        return "wrote " + ", ".join(result["wrote"])
    if "neighbours" in result or "answers" in result:
        items = result.get("neighbours") or result["answers"]
        return (f"{result.get('analogy', result['input'])}  " +
                ", ".join(f"{r['word']} {r['cosine']:.3f}" for r in items))
    return None


def cmd_export(args) -> None:
    from deepzoo.export import export
    export(args.run_dir, args.format, out=args.out)


def cmd_serve(args) -> None:
    from deepzoo.serve import serve
    serve(args.runs, host=args.host, port=args.port)


def cmd_tour(args) -> None:
    from deepzoo.report.tour import tour
    experiments = None if args.experiments is None else [n for n in args.experiments.split(",") if n and n != "none"]
    path = tour(quick=not args.full, out=args.out, data_dir=args.data_dir,
                only=args.recipes.split(",") if args.recipes else None, progress=not args.quiet,
                experiments=experiments)
    print(f"tour report: {path}")


def cmd_experiment_vanishing(args) -> None:
    from deepzoo.experiments import vanishing
    result = vanishing.run(args.out, seq_len=args.seq_len, hidden_size=args.hidden, seeds=args.seeds,
                           impl=args.impl, quick=args.quick)
    print(vanishing.format_table(result))
    print(f"plot, table and data: {args.out}/vanishing.png, {args.out}/vanishing.md, {args.out}/vanishing.json")


def cmd_experiment_cnn_vs_rnn(args) -> None:
    from deepzoo.experiments import cnn_vs_rnn
    result = cnn_vs_rnn.run(args.out, dataset=args.dataset, epochs=args.epochs, quick=args.quick,
                            data_dir=args.data_dir, seed=args.seed, embed_dim=args.embed_dim,
                            progress=not args.quiet)
    print(cnn_vs_rnn.format_table(result))
    print(f"plot, table and data: {args.out}/cnn_vs_rnn.png, {args.out}/cnn_vs_rnn.md, {args.out}/cnn_vs_rnn.json "
          f"(one run folder per net)")


def cmd_experiment_seq_throughput(args) -> None:
    from deepzoo.experiments import seq_throughput
    result = seq_throughput.run(args.out, lengths=args.lengths, batch=args.batch, width=args.width,
                                steps=args.steps, quick=args.quick, progress=not args.quiet)
    print(seq_throughput.format_table(result))
    print(f"plot, table and data: {args.out}/seq_throughput.png, {args.out}/seq_throughput.md, "
          f"{args.out}/seq_throughput.json")


def cmd_experiment_degradation(args) -> None:
    from deepzoo.experiments import degradation
    result = degradation.run(args.out, epochs=args.epochs, train_size=args.train_size, quick=args.quick,
                             data_dir=args.data_dir, seed=args.seed, progress=not args.quiet)
    print(degradation.format_table(result))
    print(f"plot, table and data: {args.out}/degradation.png, {args.out}/degradation.md, "
          f"{args.out}/degradation.json (one run folder per net)")


def cmd_experiment_vit_vs_resnet(args) -> None:
    from deepzoo.experiments import vit_vs_resnet
    result = vit_vs_resnet.run(args.out, minutes=args.minutes, sizes=args.sizes, quick=args.quick,
                               data_dir=args.data_dir, seed=args.seed, progress=not args.quiet)
    print(vit_vs_resnet.format_table(result))
    print(f"plot, table and data: {args.out}/vit_vs_resnet.png, {args.out}/vit_vs_resnet.md, "
          f"{args.out}/vit_vs_resnet.json (one run folder per net and size)")


def cmd_experiment_pretrain_finetune(args) -> None:
    from deepzoo.experiments import pretrain_finetune
    result = pretrain_finetune.run(args.out, quick=args.quick, data_dir=args.data_dir, seed=args.seed,
                                   pretrain_steps=args.pretrain_steps, finetune_steps=args.finetune_steps,
                                   eval_every=args.eval_every, slice_chars=args.slice_chars,
                                   pretrain_chars=args.pretrain_chars, progress=not args.quiet)
    print(pretrain_finetune.format_table(result))
    print(f"plot, table and data: {args.out}/pretrain_finetune.png, {args.out}/pretrain_finetune.md, "
          f"{args.out}/pretrain_finetune.json (run folders pretrain/, finetuned/, scratch/)")


def cmd_experiment_long_range(args) -> None:
    from deepzoo.experiments import long_range
    result = long_range.run(args.out, distances=args.distances, seconds=args.seconds, steps=args.steps,
                            width=args.width, quick=args.quick, seed=args.seed, progress=not args.quiet)
    print(long_range.format_table(result))
    print(f"plot, table and data: {args.out}/long_range.png, {args.out}/long_range.md, {args.out}/long_range.json")


def cmd_experiment_layernorm(args) -> None:
    from deepzoo.experiments import layernorm
    result = layernorm.run(args.out, models=args.models, quick=args.quick, seed=args.seed, progress=not args.quiet)
    print(layernorm.format_table(result))
    print(f"plot, table and data: {args.out}/layernorm.png, {args.out}/layernorm.md, {args.out}/layernorm.json")


def cmd_experiment_linear_collapse(args) -> None:
    from deepzoo.experiments import linear_collapse
    result = linear_collapse.run(args.out, datasets=args.datasets, width=args.width, quick=args.quick,
                                 seed=args.seed, progress=not args.quiet)
    print(linear_collapse.format_table(result))
    print(f"plot, table and data: {args.out}/linear_collapse.png, {args.out}/linear_collapse.md, "
          f"{args.out}/linear_collapse.json")


def cmd_experiment_list(args) -> None:
    from deepzoo import experiments
    if args.json:
        import dataclasses
        print(json.dumps([dataclasses.asdict(e) for e in experiments.EXPERIMENTS], indent=1, ensure_ascii=False))
    else:
        print(experiments.listing())


def cmd_explain_receptive_field(args) -> None:
    from deepzoo.explain.receptive_field import explain
    if args.channels * args.size ** 2 > 2**24:      # one input image of 64 MB at most
        raise DeepzooError(f"--channels x --size² must be at most {2**24:,} (one input of 64 MB), "
                           f"got {args.channels} x {args.size}²")
    print(explain(args.target, channels=args.channels, size=args.size))


def cmd_explain_graph(args) -> None:
    from deepzoo.autograd import graph
    expression = args.expression or graph.NEURON
    values = graph.parse_values(args.values if args.values is not None else
                                (graph.NEURON_VALUES if expression == graph.NEURON else ""))
    out, leaves = graph.build(expression, values, seed=args.seed)
    print(f"L = {expression}   (deepzoo.autograd: forward, then L.backward())")
    print(graph.to_text(out))
    if args.out:
        print(f"wrote {graph.render(out, args.out)}")


def cmd_data_list(args) -> None:
    from deepzoo.data import registry
    rows = [[r["name"], r["task"], str(r["files"]), f"{r['size'] / 1e6:.1f} MB", r["state"], r["path"] or "-"]
            for r in registry.table(args.data_dir)]
    print(table(rows, ["dataset", "task", "files", "size", "state", "where"]))


def cmd_data_fetch(args) -> None:
    from deepzoo.data import registry
    path = registry.fetch(args.name, dest_root=args.data_dir, mirror=args.mirror, progress=not args.quiet)
    print(f"{args.name}: verified in {path}")


# --- the parser ---------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="deepzoo", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="The classic deep-learning families, implemented cleanly on PyTorch: train them on "
                    "real data, compare with the published figures, then use your own data.")
    p.add_argument("--version", action="version", version=f"deepzoo {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser("list", help="the recipes: the figure each has reached beside its published reference",
                       description="Each recipe's default-config figure (deepzoo/figures.json, written by the "
                                   "benchmarks) beside its published reference, by family then name.")
    s.add_argument("--wide", action="store_true", help="everything: sources, commands, machines, dates, variants")
    s.add_argument("--json", action="store_true", help="the recipes, references and figures as JSON")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("runs", help="the run folders under FOLDER: settings, figure, time, state; --compare",
                       description="A table of the run folders under FOLDER (default ./runs): the settings "
                                   "changed from the recipe's defaults, the figure reached beside the reference, "
                                   "training time, start date and state (finished, stopped, diverged, not "
                                   "started). --compare RUN RUN ... plots their curves on one PNG and prints "
                                   "them side by side.")
    s.add_argument("folder", nargs="?", default="runs", metavar="FOLDER")
    s.add_argument("--compare", nargs="+", metavar="RUN", help="run folders (paths, or names under FOLDER)")
    s.add_argument("--out", metavar="FILE", help="the --compare plot (default FOLDER/compare.png)")
    s.add_argument("--json", action="store_true", help="the table's rows as JSON")
    s.set_defaults(func=cmd_runs)

    s = sub.add_parser("train", help="train a recipe into a new run folder", add_help=False,
                       description="Train RECIPE. Options apply in order: --preset, --config, --set, "
                                   "--epochs/--seed; every value is checked (type, range, choices) before "
                                   "anything is written. `deepzoo train RECIPE --help` lists RECIPE's keys; "
                                   "--print-config shows them with their values.")
    s.add_argument("-h", "--help", action=_TrainHelp, help="show this help; after RECIPE, also its config keys")
    s.add_argument("recipe", help="a recipe name from `deepzoo list`")
    s.add_argument("--epochs", type=int, help="number of epochs (same as --set train.epochs=N)")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config value, e.g. --set optim.lr=0.01 (repeatable)")
    s.add_argument("--config", metavar="FILE", help="a TOML file of overrides ([optim] lr = 0.01)")
    s.add_argument("--preset", help="a named preset of the recipe, e.g. quick")
    s.add_argument("--out", metavar="DIR", help="run folder (default runs/RECIPE-TIMESTAMP)")
    s.add_argument("--seed", type=int, help="random seed (same as --set seed=S)")
    s.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"],
                   help="where to train (same as --set train.device=D; default auto: a CUDA or MPS GPU if "
                        "PyTorch sees one, else the CPU)")
    s.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_data_dir(s)
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("resume", help="continue a stopped or killed run from its last checkpoint")
    s.add_argument("run_dir", metavar="RUN_DIR")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_data_dir(s)
    s.set_defaults(func=cmd_resume)

    s = sub.add_parser("eval", help="evaluate a run's best checkpoint on its validation and test splits")
    s.add_argument("run_dir", metavar="RUN_DIR")
    _add_data_dir(s)
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("predict", help="apply a trained run to new input (an image, a CSV, ...)",
                       description="Apply the best weights of RUN_DIR to each INPUT. The run folder is "
                                   "the model: nothing else is read (no dataset), so a folder copied to "
                                   "another machine predicts there.")
    s.add_argument("run_dir", metavar="RUN_DIR")
    s.add_argument("inputs", nargs="+", metavar="INPUT")
    s.add_argument("--json", action="store_true",
                   help="print each result as one line of JSON (the shape deepzoo.load(RUN).predict returns)")
    g = s.add_argument_group("generation (text models: gpt-shakespeare, transformer-multi30k)")
    g.add_argument("--length", type=_int_in(0, 1_000_000), help="characters to generate (gpt-shakespeare; default 300)")
    g.add_argument("--temperature", type=_float_in(0, 100),
                   help="sampling temperature: 0 is greedy, <1 sharper, >1 flatter (default 0.8)")
    g.add_argument("--top-k", type=_int_in(0, 1_000_000), help="sample only among the K most likely tokens (default 0: all)")
    g.add_argument("--seed", type=SEED, help="random seed of the sampling (default 0)")
    g.add_argument("--beam", type=_int_in(1, 100), help="beam width for translation (1: greedy; default: the run's model.beam)")
    s.add_argument("--data-dir", metavar="DIR",
                   help="not needed: a run folder predicts alone. Only for a run made before deepzoo kept "
                        "RUN_DIR/inference/: its training data, to rebuild that folder once")
    s.set_defaults(func=cmd_predict)

    s = sub.add_parser("export", help="export a run's model to ONNX or TorchScript, checked against PyTorch",
                       description="Export the model of RUN_DIR (its best weights) to ONNX or TorchScript, "
                                   "load the file back with its runtime (onnxruntime, torch.jit.load) and "
                                   "compare its outputs with the PyTorch model's on 100 inputs (max abs "
                                   "difference <= 1e-4 x max(1, |output|)) before writing it. The batch "
                                   "axis is dynamic.")
    s.add_argument("run_dir", metavar="RUN_DIR")
    s.add_argument("--format", choices=["onnx", "torchscript"], default="onnx", help="default: onnx")
    s.add_argument("--out", metavar="FILE", help="where to write (default RUN_DIR/model.onnx or RUN_DIR/model.pt)")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("serve", help="a local web app and JSON API over trained runs (pip install -e '.[serve]')",
                       description="Load each RUN once (a run folder, or a folder of runs such as a tour's) and "
                                   "serve them: an index page, one page per run made for its family, and a JSON "
                                   "API (POST /api/runs/NAME/predict takes and gives what deepzoo predict --json "
                                   "does; /docs describes it). It reads only these folders: no request names a "
                                   "file. Ctrl-C stops it.")
    s.add_argument("runs", nargs="+", metavar="RUN", help="a run folder, or a folder of runs (every run under it)")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every network)")
    s.add_argument("--port", type=_int_in(0, 65535), default=8000, help="default 8000 (0: any free port)")
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("tour", help="train every recipe (quick presets) and write one HTML report",
                       description="Train every recipe (by default its quick preset, on the samples shipped "
                                   "in the package: minutes, no download; --full: the default configs on the "
                                   "full datasets) and write report.html: each figure beside the same figure "
                                   "for a model that learned nothing, what each model does (its predictions, "
                                   "samples, policy), and the training curves; then the experiments that "
                                   "join it (deepzoo experiment list; their quick forms, with --full their "
                                   "default forms), each with its figure and table. A recipe or experiment that fails is reported there and "
                                   "the tour goes on; the exit status is then 2.")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="quick presets on shipped data, no download (the default)")
    g.add_argument("--full", action="store_true", help="the default configs on the full datasets (deepzoo data fetch)")
    s.add_argument("--out", metavar="DIR", help="report folder (default runs/tour-TIMESTAMP)")
    s.add_argument("--recipes", metavar="A,B", help="only these recipes")
    s.add_argument("--experiments", metavar="A,B",
                   help="only these experiments ('none': none); by default every one whose quick form joins the "
                        "tour (all of deepzoo experiment list), or none with --recipes")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_data_dir(s)
    s.set_defaults(func=cmd_tour)

    e = sub.add_parser("experiment", help="experiments the notes claim, as a plot and a table")
    esub = e.add_subparsers(dest="experiment", metavar="NAME", required=True)
    s = esub.add_parser("vanishing", help="gradient reaching x_t vs distance, RNN / GRU / LSTM",
                        description="The gradient reaching input x_t from a loss on the last state only, "
                                    "against the distance T - t, for RNN, GRU and LSTM at initialisation "
                                    "(log-scale plot and a table).")
    s.add_argument("--out", default="runs/experiment-vanishing", metavar="DIR")
    s.add_argument("--seq-len", type=_int_in(1, 100_000), help="sequence length T (default 100; 60 with --quick)")
    s.add_argument("--hidden", type=_int_in(1, 65536), help="hidden size H (default 64; 32 with --quick)")
    s.add_argument("--seeds", type=_int_in(1, 1000), help="seeds averaged (default 3; 2 with --quick)")
    s.add_argument("--impl", choices=["torch", "scratch"], default="torch")
    s.add_argument("--quick", action="store_true", help="T = 60, H = 32, 2 seeds (a second)")
    s.set_defaults(func=cmd_experiment_vanishing)
    s = esub.add_parser("cnn-vs-rnn", help="TextCNN vs RNN/GRU/LSTM/BiLSTM: parameters, sentences/s, accuracy",
                        description="Train each sentiment network of a dataset with the same data, "
                                    "optimiser, epochs and seed; report parameters, training and inference "
                                    "sentences per second and accuracy (bar plot and a table).")
    s.add_argument("--dataset", choices=["sst2", "chnsenticorp"], default="sst2")
    s.add_argument("--epochs", type=_int_in(1, 10_000), default=3, help="epochs for every network (default 3)")
    s.add_argument("--quick", action="store_true", help="the small samples shipped in the package")
    s.add_argument("--embed-dim", type=_int_in(1, 65536), default=128, help="embedding size, the same for every net")
    s.add_argument("--seed", type=SEED, default=0)
    s.add_argument("--out", default="runs/experiment-cnn-vs-rnn", metavar="DIR")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_data_dir(s)
    s.set_defaults(func=cmd_experiment_cnn_vs_rnn)

    s = esub.add_parser("seq-throughput", help="LSTM vs Transformer: training tokens/s as sequences grow",
                        description="Train a 2-layer LSTM and a 2-layer causal Transformer language model "
                                    "of the same width on batches of longer and longer sequences; report "
                                    "training tokens per second for each (log-log plot and a table).")
    s.add_argument("--lengths", type=_int_in(1, 100_000), nargs="+", metavar="L",
                   help="sequence lengths (default 16 32 64 128 256 512; 16 64 256 with --quick)")
    s.add_argument("--batch", type=_int_in(1, 1_000_000), help="sequences per batch (default 16; 8 with --quick)")
    s.add_argument("--width", type=_int_in(1, 65536), help="model width of both nets (default 128; 64 with --quick)")
    s.add_argument("--steps", type=_int_in(1, 1_000_000),
                   help="timed training steps per point (default 5; 3 with --quick)")
    s.add_argument("--quick", action="store_true", help="3 lengths, smaller nets, fewer steps (seconds)")
    s.add_argument("--out", default="runs/experiment-seq-throughput", metavar="DIR")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_experiment_seq_throughput)

    s = esub.add_parser("degradation", help="plain-20/56 vs ResNet-20/56 on CIFAR-10 with one budget (He et al. Fig. 6)",
                        description="Train plain-20, plain-56, ResNet-20 and ResNet-56 with the same data, "
                                    "epochs, schedule and seed; plot training error (dashed) and test error "
                                    "(solid) per epoch, plain nets left, ResNets right, and print a table.")
    s.add_argument("--epochs", type=_int_in(1, 10_000), help="epochs for every net (default 8; 3 with --quick)")
    s.add_argument("--train-size", type=_int_in(0, 10_000_000), default=10000,
                   help="train on the first N training images (default 10000; 0: all; --quick uses the "
                        "whole packaged sample)")
    s.add_argument("--quick", action="store_true", help="the small sample shipped in the package")
    s.add_argument("--seed", type=SEED, default=0)
    s.add_argument("--out", default="runs/experiment-degradation", metavar="DIR")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_data_dir(s)
    s.set_defaults(func=cmd_experiment_degradation)

    s = esub.add_parser("vit-vs-resnet", help="ViT vs ResNet-20 on CIFAR-10: same time, several training-set sizes",
                        description="Train the ViT (vit-cifar10) and ResNet-20 (resnet20-cifar10) for the same "
                                    "wall-clock budget on the first N CIFAR-10 training images, for several N; "
                                    "plot test accuracy against N, one line per net, and print a table (test "
                                    "accuracy, training images/s, epochs, time).")
    s.add_argument("--minutes", type=_float_in(0.01, 1440),
                   help="minutes of training per net and size (default 3: 18 minutes for the 6 runs; 0.06 with --quick)")
    s.add_argument("--sizes", type=_int_in(1, 10_000_000), nargs="+", metavar="N",
                   help="training-set sizes (default 2500 10000 30000; 100 250 500 with --quick)")
    s.add_argument("--quick", action="store_true", help="the 500 packaged CIFAR-10 images (under a minute)")
    s.add_argument("--seed", type=SEED, default=0)
    s.add_argument("--out", default="runs/experiment-vit-vs-resnet", metavar="DIR")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_data_dir(s)
    s.set_defaults(func=cmd_experiment_vit_vs_resnet)

    s = esub.add_parser("pretrain-finetune", help="char GPT pre-trained on IMDB reviews, fine-tuned on a slice of "
                                                  "Shakespeare, vs the same model from scratch",
                        description="Pre-train a character GPT on English that is not Shakespeare (IMDB's "
                                    "unlabelled reviews), fine-tune it on a small slice of tiny Shakespeare "
                                    "(model.pretrained), and train the same model from scratch on the same "
                                    "slice with the same steps and schedule; plot both validation losses "
                                    "against the fine-tuning step and print a table.")
    s.add_argument("--quick", action="store_true", help="the small samples shipped in the package (seconds)")
    s.add_argument("--pretrain-steps", type=_int_in(1, 10_000_000), help="pre-training steps (default 3000; 200 with --quick)")
    s.add_argument("--finetune-steps", type=_int_in(1, 10_000_000),
                   help="steps of each Shakespeare run (default 600; 60 with --quick)")
    s.add_argument("--eval-every", type=_int_in(1, 10_000_000),
                   help="validate every N fine-tuning steps (default 50; 20 with --quick)")
    s.add_argument("--slice-chars", type=_int_in(1, 100_000_000),
                   help="characters of Shakespeare's training text to fine-tune on (default 100000; 20000 with --quick)")
    s.add_argument("--pretrain-chars", type=_int_in(10_000, 1_000_000_000),
                   help="characters of IMDB reviews to pre-train on (default 3000000)")
    s.add_argument("--seed", type=SEED, default=0)
    s.add_argument("--out", default="runs/experiment-pretrain-finetune", metavar="DIR")
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_data_dir(s)
    s.set_defaults(func=cmd_experiment_pretrain_finetune)

    s = esub.add_parser("long-range", help="LSTM vs Transformer of the same size: recall a token d positions back",
                        description="A synthetic task whose answer is a token exactly d positions before the "
                                    "last one, among distractors. A 1-layer LSTM and a 1-block causal "
                                    "Transformer of the same width and about the same parameters train for "
                                    "the same wall-clock time at each distance; plot held-out accuracy against "
                                    "d and print a table (accuracy and steps taken).")
    s.add_argument("--distances", type=_int_in(1, 100_000), nargs="+", metavar="D",
                   help="distances d (default 10 25 50 100 200; 4 16 32 with --quick); sequences are max(d) + 1 long")
    s.add_argument("--seconds", type=_float_in(0.01, 86_400),
                   help="wall-clock training time per net and distance (default 45; 2.5 with --quick)")
    s.add_argument("--steps", type=_int_in(1, 100_000_000),
                   help="train each net this many steps instead of for --seconds (the same for both)")
    s.add_argument("--width", type=_int_in(4, 4096), help="width of both nets, a multiple of 4 (default 64; 32 with --quick)")
    s.add_argument("--quick", action="store_true", help="short sequences and 2.5 s a run (about 20 s in all)")
    s.add_argument("--seed", type=SEED, default=0)
    s.add_argument("--out", default="runs/experiment-long-range", metavar="DIR")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_experiment_long_range)

    s = esub.add_parser("layernorm", help="a Transformer and a deep MLP with and without LayerNorm, over learning rates",
                        description="Train deepzoo's GPT (a character model on the packaged Shakespeare sample, "
                                    "Adam) and a 6-layer MLP (the packaged MNIST sample, SGD with momentum), "
                                    "each with and without LayerNorm, at a sweep of learning rates; plot and "
                                    "tabulate the final loss, the steps to a target loss and the runs that "
                                    "diverged (loss NaN, infinite or above 3 ln K).")
    s.add_argument("--models", nargs="+", choices=["transformer", "mlp"], default=["transformer", "mlp"])
    s.add_argument("--quick", action="store_true", help="smaller models, 3 rates, 40 steps (seconds)")
    s.add_argument("--seed", type=SEED, default=0)
    s.add_argument("--out", default="runs/experiment-layernorm", metavar="DIR")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_experiment_layernorm)

    s = esub.add_parser("linear-collapse", help="MLPs of depth 1-4 without activation vs ReLU; the product of weights",
                        description="Train MLPs of depth 1 to 4 with no activation (model.activation=none) and "
                                    "with ReLU, on the packaged MNIST sample and on two concentric rings; "
                                    "multiply each activation-free net out into one matrix and bias and compare "
                                    "its outputs with the net's; plot test accuracy against depth and print a table.")
    s.add_argument("--datasets", nargs="+", choices=["mnist", "rings"], default=["mnist", "rings"])
    s.add_argument("--width", type=_int_in(10, 65536), help="hidden width (default 128; 32 with --quick)")
    s.add_argument("--quick", action="store_true", help="fewer examples and epochs (seconds)")
    s.add_argument("--seed", type=SEED, default=0)
    s.add_argument("--out", default="runs/experiment-linear-collapse", metavar="DIR")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=cmd_experiment_linear_collapse)

    s = esub.add_parser("list", help="every experiment: the claim, the note it comes from, the verdict measured",
                        description="Every experiment with the claim it checks, the note (file and line) it "
                                    "comes from, the verdict measured and its results files.")
    s.add_argument("--json", action="store_true", help="the same as JSON")
    s.set_defaults(func=cmd_experiment_list)

    x = sub.add_parser("explain", help="what the notes draw by hand, computed from the real models")
    xsub = x.add_subparsers(dest="explain", metavar="WHAT", required=True)
    s = xsub.add_parser("receptive-field", help="output size, receptive field and parameters of each layer",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        description="For each convolution, pooling and fully connected layer: its output "
                                    "size, receptive field (input pixels one output pixel sees) and "
                                    "parameter count.",
                        epilog="TARGET is one of:\n"
                               "  a CNN recipe        resnet20-cifar10, vgg-cifar10, cnn-mnist, ...\n"
                               "  a layer spec        conv3,conv3,pool2,conv3s2  (convK[sS]: KxK conv, C -> C "
                               "channels, stride S; poolK[sS]: max-pool)\n"
                               "  7x7-vs-3x3          the notes' comparison: one 7x7 conv vs three 3x3 convs")
    s.add_argument("target", metavar="TARGET")
    s.add_argument("--channels", type=_int_in(1, 512), default=64, help="C, the channels of a spec's layers and of 7x7-vs-3x3 (default 64)")
    s.add_argument("--size", type=_int_in(1, 4096), default=32, help="input height and width for a spec (default 32)")
    s.set_defaults(func=cmd_explain_receptive_field)
    s = xsub.add_parser("graph", help="the computation graph of an expression, with values and gradients",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        description="Builds EXPRESSION from scalar tensors of deepzoo.autograd (the NumPy "
                                    "engine), runs the backward pass, and prints every node with its value "
                                    "and dL/dnode, inputs first.",
                        epilog="EXPRESSION uses names, numbers, + - * / **, and tanh relu sigmoid exp log, e.g.\n"
                               "  deepzoo explain graph                                  micrograd's neuron "
                               "(the default)\n"
                               "  deepzoo explain graph \"x*y + exp(x)\" --values x=1,y=2\n"
                               "  deepzoo explain graph \"sigmoid(w*x + b)\" --out graph.svg   drawn by "
                               "Graphviz (graph.dot: the source)")
    s.add_argument("expression", metavar="EXPRESSION", nargs="?",
                   help="default: micrograd's neuron, tanh(w1*x1 + w2*x2 + b)")
    s.add_argument("--values", metavar="NAME=X,...", help="values of the names (others: random, --seed)")
    s.add_argument("--seed", type=SEED, default=0)
    s.add_argument("--out", metavar="FILE", help="also write the graph: .dot, or .png / .svg with Graphviz")
    s.set_defaults(func=cmd_explain_graph)

    d = sub.add_parser("data", help="list, check and fetch datasets")
    dsub = d.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    s = dsub.add_parser("list", help="each dataset, and whether it is present and verified (sha256)")
    _add_data_dir(s)
    s.set_defaults(func=cmd_data_list)
    s = dsub.add_parser("fetch", help="download a dataset into the cache (or --data-dir) and verify it")
    s.add_argument("name")
    s.add_argument("--mirror", metavar="URL", help="base URL to download the files from instead")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_data_dir(s)
    s.set_defaults(func=cmd_data_fetch)
    return p


def _one_line(e: Exception | str) -> str:
    """An error's text on one line, even when it quotes a name that holds a line break (a path, a word)."""
    return str(e).replace("\r", "\\r").replace("\n", "\\n")


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose error line stays one line when it quotes an argument holding a line break."""

    def error(self, message: str):
        super().error(_one_line(message))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except TrainingDiverged as e:
        print(f"deepzoo: error: {_one_line(e)}", file=sys.stderr)
        return 3
    except DeepzooError as e:
        print(f"deepzoo: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except OSError as e:             # a file the system will not read or write: a name too long, no space, ...
        if isinstance(e, BrokenPipeError):   # the output was piped into a reader that stopped early (head, less)
            sys.stderr.close()
            return 0
        from deepzoo.config import show
        where = f"{show(e.filename, 80)}: " if e.filename else ""
        print(f"deepzoo: error: {where}{_one_line(e.strerror or e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("deepzoo: interrupted; a run can be continued with `deepzoo resume RUN_DIR`", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
