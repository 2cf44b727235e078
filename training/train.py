"""Train a FerNet on FER2013 Training, select on a validation split of it; resumable; runs under
``torchrun`` or on a CUDA GPU (``--device cuda``).

    python -m training.train --out runs/main --arch a3 --strategy sqrt --epochs 60
    python -m training.train --out runs/kd --teacher TEACHER.onnx --ema 0.999  # distil + EMA
    torchrun --nproc-per-node 2 -m training.train --out runs/ddp ...   # DDP (gloo on CPU)

The validation split (``data.VAL_FRACTION`` of Training, stratified, fixed seed) is held out of
training and selects the checkpoint; PublicTest is measured every epoch for the record only.
``--val-fraction 0`` trains on all of Training and selects on PublicTest (runs made before the
split existed). Checkpoints (``last.pt``, atomically replaced every epoch) hold model, optimizer,
scheduler, history and the best weights; ``--resume`` continues an interrupted run exactly
(per-epoch RNG streams are derived from seed and epoch).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler

from ferfast.contract import DEFAULT_BIAS, DEFAULT_SCALE

from .augment import AugConfig, augment, mix
from .config import TrainConfig
from .data import load
from .distill import Teacher, kd_loss, make_ema
from .metrics import Metrics, compute_metrics
from .model import build_net, count_macs, count_params
from .predict import predict_probs
from .strategies import STRATEGIES, TrainSet, loss_fn, make_trainset


@dataclass
class TrainResult:
    """Outcome of a run (rank 0)."""

    out: str
    epochs_run: int
    best_epoch: int
    best_metrics: dict  # PublicTest, of the selected weights
    best_val_metrics: dict | None  # validation (what selected them); None without the split
    history: list[dict] = field(default_factory=list)
    params: int = 0
    mflops: float = 0.0
    train_size: int = 0
    steps: int = 0
    seconds: float = 0.0


def _dist() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _score(m: Metrics, select: str) -> float:
    if select == "acc":
        return m.accuracy
    if select == "macro_f1":
        return m.macro_f1
    return 0.5 * (m.accuracy + m.macro_f1)


def _lr_lambda(total: int, warmup: int):
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        p = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, p)))

    return f


def _epoch_indices(sampler: DistributedSampler, epoch: int, need: int) -> np.ndarray:
    """This rank's sample order for ``epoch``: the sampler's permutation, extended with further
    permutations (epoch * 1000 + j) when a fixed step budget needs more than one pass."""
    parts, have, j = [], 0, 0
    while have < need:
        sampler.set_epoch(epoch if j == 0 else epoch * 1000 + j)
        parts.append(np.fromiter(iter(sampler), dtype=np.int64))
        have += len(parts[-1])
        j += 1
    return np.concatenate(parts)


def _atomic_save(obj: object, path: Path) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _atomic_json(obj: object, path: Path) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


Split = tuple[np.ndarray, np.ndarray]


def prepare(cfg: TrainConfig) -> tuple[TrainSet, Split, Split]:
    """Load data, hold out the validation split, apply the strategy to the rest of Training;
    return (trainset, validation (x, y), PublicTest (x, y)); validation is empty when
    ``cfg.val_fraction`` is 0."""
    data, report = load(cfg.data, cfg.cache)
    (xtr, ytr), (xval, yval) = data.holdout(cfg.val_fraction)
    xpt, ypt = data.subset("PublicTest")
    if len(xtr) == 0 or len(xpt) == 0:
        raise ValueError(f"{cfg.data}: need Training and PublicTest images ({report.summary()})")
    rng = np.random.default_rng(cfg.seed)

    def limit(x: np.ndarray, y: np.ndarray, n: int) -> Split:
        if n and n < len(x):
            idx = np.sort(rng.choice(len(x), n, replace=False))
            return x[idx], y[idx]
        return x, y

    xtr, ytr = limit(xtr, ytr, cfg.limit_train)
    xpt, ypt = limit(xpt, ypt, cfg.limit_eval)
    xval, yval = limit(xval, yval, cfg.limit_eval)
    ts = make_trainset(cfg.strategy, xtr, ytr, seed=cfg.seed, focal_gamma=cfg.focal_gamma)
    return ts, (xval, yval), (xpt, ypt)


def train(cfg: TrainConfig, resume: bool = False) -> TrainResult | None:
    """Run (or resume) training; returns the result on rank 0, None on other ranks."""
    if cfg.strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {cfg.strategy!r}; expected one of {STRATEGIES}")
    if cfg.optimizer not in ("sgd", "adamw"):
        raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {cfg.optimizer!r}")
    if cfg.select not in ("acc", "macro_f1", "mean"):
        raise ValueError(f"select must be acc, macro_f1 or mean, got {cfg.select!r}")
    if cfg.teacher and cfg.strategy in ("6class", "twotier"):
        raise ValueError(f"--teacher needs a 7-class head; strategy {cfg.strategy!r} has another")
    if not 0.0 <= cfg.distill_alpha <= 1.0 or cfg.distill_temp <= 0:
        raise ValueError("distill_alpha must be in [0, 1] and distill_temp > 0")
    if cfg.mixup < 0 or cfg.cutmix < 0 or not 0.0 <= cfg.erase <= 1.0:
        raise ValueError("mixup and cutmix must be >= 0 and erase in [0, 1]")
    if (cfg.mixup or cfg.cutmix) and cfg.strategy == "twotier":
        raise ValueError("mixup / cutmix need a plain classification head, not twotier")
    device = torch.device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    teacher = Teacher(cfg.teacher, threads=cfg.threads) if cfg.teacher else None
    rank, world = _dist()
    out = Path(cfg.out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    ts, (xval, yval), (xpt, ypt) = prepare(cfg)
    has_val = len(yval) > 0
    torch.manual_seed(cfg.seed)
    net = build_net(cfg.arch, num_classes=ts.num_outputs, dropout=cfg.dropout)
    if cfg.init_weights:
        from .imagenet import load_imagenet_weights

        skipped = load_imagenet_weights(net, cfg.init_weights)
        if rank == 0:
            print(f"ImageNet weights {cfg.init_weights} (not loaded: {len(skipped)} head keys)")
    if cfg.init_from.endswith(".onnx"):
        from .export import load_onnx_net

        start = load_onnx_net(cfg.init_from, ts.images)
        if start.arch != cfg.arch or start.num_classes != ts.num_outputs:
            raise ValueError(f"--init-from {cfg.init_from}: arch {start.arch}, not {cfg.arch}")
        net.load_state_dict(start.state_dict())
    elif cfg.init_from:
        init = torch.load(cfg.init_from, map_location="cpu", weights_only=False)
        net.load_state_dict(init.get("best_state") or init["model"])
    net = net.to(device)
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    ema = make_ema(net, cfg.ema) if cfg.ema else None
    decay = [p for n, p in net.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in net.named_parameters() if p.ndim <= 1]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
    else:
        opt = torch.optim.AdamW(groups, lr=cfg.lr)
    n = len(ts.images)
    per_rank = math.ceil(n / world)
    bs = cfg.batch_size
    steps_per_epoch = cfg.steps_per_epoch or (max(1, per_rank // bs) if per_rank >= bs else 1)
    total = steps_per_epoch * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, _lr_lambda(total, int(cfg.warmup_epochs * steps_per_epoch))
    )
    crit = loss_fn(ts, cfg.label_smoothing)
    state = {
        "epoch": 0,
        "history": [],
        "best_score": -1.0,
        "best_epoch": -1,
        "best_state": None,
        "best_metrics": None,  # PublicTest scores of the selected weights (the report)
        "best_val_metrics": None,  # validation scores of the selected weights (the selection)
        "bad_epochs": 0,
    }
    ckpt_path = out / "last.pt"
    if resume and ckpt_path.is_file():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ck["config"]["arch"] != cfg.arch or ck["config"]["strategy"] != cfg.strategy:
            raise ValueError(f"{ckpt_path} was made with another arch/strategy")
        # checkpoints from before the validation split trained on all of Training
        if ck["config"].get("val_fraction", 0.0) != cfg.val_fraction:
            raise ValueError(
                f"{ckpt_path} was made with --val-fraction "
                f"{ck['config'].get('val_fraction', 0.0)}; resume with the same value"
            )
        if (ema is None) != (ck.get("ema") is None):
            raise ValueError(f"{ckpt_path}: --ema must match the interrupted run's setting")
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        if ema is not None:
            ema.load_state_dict(ck["ema"])
        for k in state:
            state[k] = ck.get(k)
        if rank == 0:
            print(f"resumed {ckpt_path} at epoch {state['epoch']}", flush=True)
    model: torch.nn.Module = net
    if world > 1:
        model = DistributedDataParallel(net)
    sampler = DistributedSampler(
        range(n), num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed, drop_last=False
    )
    aug_cfg = AugConfig(erase=cfg.erase)
    # the (uint8) training set lives on the device: a CUDA run copies it once
    images = torch.from_numpy(ts.images).to(device)
    ytr = torch.from_numpy(ts.labels).to(device)
    stop = False
    if rank == 0:
        print(
            f"arch={cfg.arch} params={count_params(net)} "
            f"MFLOPs={2 * count_macs(cfg.arch) / 1e6:.1f} "
            f"strategy={cfg.strategy} train={n} val={len(yval)} publictest={len(ypt)} "
            f"select_on={'val' if has_val else 'PublicTest'} world={world} device={device} "
            f"steps/epoch={steps_per_epoch}"
            + (
                f" teacher={cfg.teacher} alpha={cfg.distill_alpha} T={cfg.distill_temp}"
                if teacher
                else ""
            )
            + (f" ema={cfg.ema}" if ema is not None else "")
            + (f" mixup={cfg.mixup}" if cfg.mixup else "")
            + (f" cutmix={cfg.cutmix}" if cfg.cutmix else ""),
            flush=True,
        )
    first_epoch = state["epoch"]
    t_loop = time.time()
    for epoch in range(first_epoch, cfg.epochs):
        if stop or (cfg.stop_after and epoch - first_epoch >= cfg.stop_after):
            break
        t0 = time.time()
        idx = _epoch_indices(sampler, epoch, steps_per_epoch * bs)
        stream = cfg.seed * 1_000_003 + epoch * 101 + rank
        g = torch.Generator(device).manual_seed(stream)
        torch.manual_seed(stream)
        model.train()
        batches = [idx[i : i + bs] for i in range(0, len(idx), bs)][:steps_per_epoch]
        it = batches
        if rank == 0 and cfg.progress:
            from tqdm import tqdm

            it = tqdm(
                batches,
                desc=f"epoch {epoch + 1}/{cfg.epochs}",
                file=sys.stderr,
                mininterval=2.0,
                leave=False,
            )
        tot_loss, tot_correct, tot_n = 0.0, 0.0, 0
        for b in it:
            bt = torch.from_numpy(b).to(device)
            xb = images[bt].float().mul_(DEFAULT_SCALE).add_(DEFAULT_BIAS).unsqueeze(1)
            if cfg.aug:
                xb = augment(xb, aug_cfg, g)
            yb, lam, yb2 = ytr[bt], 1.0, None
            if cfg.mixup or cfg.cutmix:
                xb, perm, lam = mix(xb, cfg.mixup, cfg.cutmix, g)
                yb2 = yb[perm]
            if cfg.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                logits = model(xb)
            loss = crit(logits.float(), yb)
            if yb2 is not None:
                loss = lam * loss + (1 - lam) * crit(logits.float(), yb2)
            if teacher is not None:
                a = cfg.distill_alpha
                t_logp = teacher(xb).to(device)
                loss = (1 - a) * loss + a * kd_loss(logits, t_logp, cfg.distill_temp)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if ema is not None:
                ema.update_parameters(net)
            tot_loss += float(loss.detach()) * len(b)
            pred = logits[:, :7].argmax(1) if ts.strategy == "twotier" else logits.argmax(1)
            tot_correct += lam * int((pred == yb).sum())
            if yb2 is not None:
                tot_correct += (1 - lam) * int((pred == yb2).sum())
            tot_n += len(b)
        if rank == 0:
            evaluated = net if ema is None else ema.module
            mpt = compute_metrics(ypt, predict_probs(evaluated, xpt, cfg.strategy))
            mval = (
                compute_metrics(yval, predict_probs(evaluated, xval, cfg.strategy))
                if has_val
                else None
            )
            score = _score(mval or mpt, cfg.select)
            rec = {
                "epoch": epoch + 1,
                "train_loss": tot_loss / max(1, tot_n),
                "train_acc": tot_correct / max(1, tot_n),
                **(
                    {
                        "val_acc": mval.accuracy,
                        "val_macro_f1": mval.macro_f1,
                        "val_disgust_recall": mval.disgust_recall,
                    }
                    if mval
                    else {}
                ),
                "publictest_acc": mpt.accuracy,
                "publictest_macro_f1": mpt.macro_f1,
                "publictest_disgust_recall": mpt.disgust_recall,
                "lr": sched.get_last_lr()[0],
                "seconds": time.time() - t0,
            }
            state["history"].append(rec)
            if score > state["best_score"]:
                state.update(
                    best_score=score,
                    best_epoch=epoch + 1,
                    bad_epochs=0,
                    best_metrics=mpt.as_dict(),
                    best_val_metrics=None if mval is None else mval.as_dict(),
                    best_state={
                        k: v.detach().cpu().clone() for k, v in evaluated.state_dict().items()
                    },
                )
            else:
                state["bad_epochs"] += 1
            state["epoch"] = epoch + 1
            stop = bool(cfg.patience and state["bad_epochs"] >= cfg.patience)
            done = epoch + 1 - first_epoch
            if (
                cfg.time_limit
                and time.time() + (time.time() - t_loop) / done > t_start + cfg.time_limit
            ):
                print(
                    f"time limit {cfg.time_limit:.0f}s: stopping after epoch {epoch + 1}",
                    flush=True,
                )
                stop = True
            _atomic_save(
                {
                    "config": asdict(cfg),
                    "model": net.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "ema": None if ema is None else ema.state_dict(),
                    "num_classes": ts.num_outputs,
                    "emotions": list(ts.emotions),
                    **state,
                },
                ckpt_path,
            )
            _atomic_json(state["history"], out / "history.json")
            print(
                f"epoch {epoch + 1:3d} loss={rec['train_loss']:.4f} "
                f"train_acc={rec['train_acc']:.4f} | "
                + (f"val {mval.line()} | " if mval else "")
                + f"PublicTest {mpt.line()} | best@{state['best_epoch']} {rec['seconds']:.0f}s",
                flush=True,
            )
        if world > 1:
            flag = torch.tensor([1 if stop else 0])
            dist.broadcast(flag, 0)
            stop = bool(flag.item())
    if world > 1:
        dist.barrier()
    if rank != 0:
        return None
    best = out / "best.pt"
    ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    _atomic_save(
        {
            k: ck[k]
            for k in (
                "config",
                "num_classes",
                "emotions",
                "best_state",
                "best_metrics",
                "best_val_metrics",
                "best_epoch",
                "history",
            )
        },
        best,
    )
    res = TrainResult(
        out=str(out),
        epochs_run=ck["epoch"],
        best_epoch=ck["best_epoch"],
        best_metrics=ck["best_metrics"],
        best_val_metrics=ck.get("best_val_metrics"),
        history=ck["history"],
        params=count_params(net),
        mflops=2 * count_macs(cfg.arch) / 1e6,
        train_size=n,
        steps=steps_per_epoch * ck["epoch"],
        seconds=time.time() - t_start,
    )
    _atomic_json({k: v for k, v in asdict(res).items() if k != "history"}, out / "result.json")
    return res


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, bool]:
    """CLI flags mirror :class:`TrainConfig` fields (``--no-bf16`` etc. for booleans)."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            ap.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default)
        else:
            typ = {"int": int, "float": float, "str": str}[str(f.type)]
            kw = {"choices": STRATEGIES} if f.name == "strategy" else {}
            ap.add_argument(flag, type=typ, default=f.default, **kw)
    ap.add_argument("--resume", action="store_true", help="continue from OUT/last.pt if present")
    a = vars(ap.parse_args(argv))
    resume = a.pop("resume")
    return TrainConfig(**a), resume


def main(argv: list[str] | None = None) -> None:
    cfg, resume = parse_args(argv)
    res = train(cfg, resume=resume)
    if res is not None:
        bm, bv = res.best_metrics, res.best_val_metrics
        val = f"val acc={bv['accuracy']:.4f} macroF1={bv['macro_f1']:.4f}; " if bv else ""
        print(
            f"done: best epoch {res.best_epoch}: {val}PublicTest acc={bm['accuracy']:.4f} "
            f"macroF1={bm['macro_f1']:.4f} disgustR={bm['disgust_recall']:.3f} -> {res.out}"
        )
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
