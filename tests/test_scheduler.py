"""Continuous batching (whispermedia.batched, whispermedia.scheduler): every decode in a batch
gets exactly the bits it gets alone, and every file exactly the transcript it gets alone."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from checkpoint_writers import random_state_dict, tiny_dims, write_openai
from whispermedia.batched import BatchedInference, SlotInference, SlotPool, _chunks
from whispermedia.decoding import CachedInference, DecodingTask, LogitsRequest, serve
from whispermedia.models import build_model
from whispermedia.options import DecodingOptions, OptionError, TranscribeOptions
from whispermedia.scheduler import BatchOptions, Scheduler, rows_per_stream, transcribe_many
from whispermedia.weights import read_checkpoint

SPEECH = Path(__file__).parent / "data" / "speech"
MULTI = Path(__file__).parent / "data" / "speech_multilingual"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A seeded random model whose weights float16 holds exactly, so the decoder runs on the
    compact-weight kernels as a released checkpoint does (the path whose rows are independent)."""
    dims = tiny_dims(80, 51865)
    sd = {k: (v * 4 if "token_embedding" in k else v).half().float()
          for k, v in random_state_dict(dims, seed=1).items()}
    path = write_openai(tmp_path_factory.mktemp("ckpt") / "tiny.pt", dims, sd)
    return build_model(read_checkpoint(path), name="tiny-random")


def _features(model, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    mel = torch.randn(n, model.dims.n_mels, 2 * model.dims.n_audio_ctx, generator=g)
    with torch.no_grad():
        return model.embed_audio(mel)


def _decode_options():
    """Greedy, 3 beams and 3 samples with prompts of different lengths: every kind of row."""
    return [
        DecodingOptions(language="en", temperature=0.0),
        DecodingOptions(language="en", temperature=0.0, beam_size=3, prompt=(1, 2, 3, 4, 5, 6, 7)),
        DecodingOptions(language="en", temperature=0.7, best_of=3, prompt=(11, 12)),
        DecodingOptions(language="en", temperature=0.0, without_timestamps=True, sample_len=20),
    ]


def _lockstep(tasks, features):
    """Drive the decodes together, serving every one-token step of all of them in one batch."""
    batched = BatchedInference(tiny_model_of(tasks))
    runs = [t.steps(f) for t, f in zip(tasks, features)]
    results = [None] * len(runs)
    pending = {i: next(r) for i, r in enumerate(runs)}
    with torch.no_grad():
        while pending:
            firsts = {i: q.serve() for i, q in pending.items() if q.first}
            steps = [i for i, q in pending.items() if not q.first]
            replies = dict(firsts)
            replies.update(zip(steps, batched.step([pending[i] for i in steps])))
            for i, reply in replies.items():
                try:
                    pending[i] = runs[i].send(reply)
                except StopIteration as done:
                    results[i] = done.value[0]
                    del pending[i]
    return results


def tiny_model_of(tasks):
    return tasks[0].model


def test_batched_step_is_bit_identical_to_each_decode_alone(tiny_model):
    feats = _features(tiny_model, 4)
    opts = _decode_options()
    alone = []
    for o, f in zip(opts, feats):
        task = DecodingTask(tiny_model, o, generator=torch.Generator().manual_seed(5))
        with torch.no_grad():
            alone.append(task.run(None, audio_features=f[None])[0])
    pool = SlotPool(tiny_model, n_slots=4, rows_per_slot=3)
    tasks = [DecodingTask(tiny_model, o, generator=torch.Generator().manual_seed(5),
                          inference=SlotInference(tiny_model, pool, slot))
             for slot, o in enumerate(opts)]
    together = _lockstep(tasks, [f[None] for f in feats])
    assert together == alone
    assert all(r.avg_logprob == a.avg_logprob and r.no_speech_prob == a.no_speech_prob
               for r, a in zip(together, alone))
    assert len({len(r.tokens) for r in alone}) > 1  # the decodes really ended at different steps


def test_batched_logits_equal_alone_whatever_the_company(tiny_model):
    """One step's logits for a 3-beam decode: alone, beside 1 other decode, beside 5."""
    feats = _features(tiny_model, 6, seed=3)
    prompts = [torch.tensor([[50258, 50259, 50359] + list(range(100, 100 + k))]) for k in range(6)]  # lengths 3..8

    def step(n_decodes):
        pool = SlotPool(tiny_model, n_slots=n_decodes, rows_per_slot=3)
        requests = []
        with torch.no_grad():
            for slot in range(n_decodes):
                inf = SlotInference(tiny_model, pool, slot)
                inf.start(feats[slot:slot + 1], 3, 0)
                rows = prompts[slot].repeat(3, 1)
                inf.logits(rows, first=True)
                requests.append(LogitsRequest(inf, torch.cat([rows, rows[:, -1:]], 1), first=False))
            return BatchedInference(tiny_model).step(requests)

    alone = CachedInference(tiny_model, tiny_model.tokenizer.no_speech)
    with torch.no_grad():
        alone.start(feats[:1], 3, 0)
        rows = prompts[0].repeat(3, 1)
        alone.logits(rows, first=True)
        expected = alone.logits(torch.cat([rows, rows[:, -1:]], 1), first=False)
    for n in (1, 2, 6):
        assert torch.equal(step(n)[0], expected)


def test_window_encoder_gives_each_window_its_own_bits(tiny_model):
    """Windows encoded by the worker threads (one CPU thread each) and by the caller's thread
    (``help``, with the cores left) equal each window encoded alone; close() drops the rest."""
    from whispermedia.batched import WindowEncoder

    g = torch.Generator().manual_seed(3)
    mels = [torch.randn(1, tiny_model.dims.n_mels, 2 * tiny_model.dims.n_audio_ctx, generator=g) for _ in range(5)]
    with torch.no_grad():
        alone = [tiny_model.embed_audio(m) for m in mels]
    for streams in (1, 4):  # 1: in the caller's thread; 4: workers (on a machine of 2 cores or more)
        encoder = WindowEncoder(tiny_model, streams)
        try:
            futures = encoder.submit(mels)
            with encoder.idle():
                while encoder.help():
                    pass
            for f, a in zip(futures, alone):
                assert torch.equal(f.result(timeout=60), a)
        finally:
            encoder.close()
    encoder = WindowEncoder(tiny_model, 4)
    futures = encoder.submit(mels)
    encoder.close()  # the windows not started are dropped, none is left running
    assert all(f.done() for f in futures) and all(f.cancelled() or torch.equal(f.result(), a)
                                                  for f, a in zip(futures, alone))
    with pytest.raises(ValueError, match="closed"):
        encoder.submit(mels[:1])


def test_the_encoding_thread_makes_the_cross_kv_the_decode_then_finds(tiny_model, monkeypatch):
    """``submit(then=)``: each window's cross-attention K/V are made into its slot by the thread
    that encoded it (a worker, or the caller's in ``help``), with the bits ``cache`` makes; the
    decode's ``cache`` then does not make them again."""
    import threading

    from whispermedia.batched import WindowEncoder

    g = torch.Generator().manual_seed(4)
    mels = [torch.randn(1, tiny_model.dims.n_mels, 2 * tiny_model.dims.n_audio_ctx, generator=g) for _ in range(4)]
    made = []
    fill = SlotPool.fill_cross

    def spy(self, slot, features):
        made.append((slot, threading.current_thread().name))
        fill(self, slot, features)

    monkeypatch.setattr(SlotPool, "fill_cross", spy)
    pool = SlotPool(tiny_model, n_slots=4, rows_per_slot=1)
    slots = [pool.acquire() for _ in mels]
    for streams in (1, 4):  # in the caller's thread, then on workers
        made.clear()
        encoder = WindowEncoder(tiny_model, streams)
        try:
            futures = encoder.submit(mels, [lambda f, s=s: pool.fill_cross(s, f) for s in slots])
            with encoder.idle():
                while encoder.help():
                    pass
            features = [f.result(timeout=60) for f in futures]
        finally:
            encoder.close()
        assert sorted(s for s, _ in made) == slots
        if streams > 1 and torch.get_num_threads() > 1:
            assert any(name.startswith("wm-encoder") for _, name in made)
        made.clear()
        for s, f in zip(slots, features):
            cache = pool.cache(s, f, rows=1)
            assert made == []  # found made
            fresh = tiny_model.decoder.new_cache(f)
            assert torch.equal(cache.cross_k, fresh.cross_k) and torch.equal(cache.cross_v, fresh.cross_v)


def test_chunks_keep_a_decode_whole_and_rows_under_the_limit():
    assert _chunks([5, 5, 5], 10) == [(0, 2), (2, 3)]
    assert _chunks([70, 1], 64) == [(0, 1), (1, 2)]
    assert _chunks([1] * 5, 64) == [(0, 5)]
    assert _chunks([], 64) == []


def test_slot_pool_refuses_misuse(tiny_model):
    pool = SlotPool(tiny_model, n_slots=1, rows_per_slot=2)
    slot = pool.acquire()
    with pytest.raises(ValueError):
        pool.acquire()
    with pytest.raises(ValueError):
        pool.cache(slot, _features(tiny_model, 1), rows=3)
    pool.release(slot)
    with pytest.raises(ValueError):
        pool.release(slot)
    with pytest.raises(ValueError):
        SlotPool(tiny_model, n_slots=0, rows_per_slot=1)


def test_slot_pool_allocates_a_slot_when_first_taken_and_keeps_it(tiny_model):
    """A pool sized for 8 streams costs the slots used; a freed slot's buffers serve the next
    stream (the same storage, no new allocation)."""
    pool = SlotPool(tiny_model, n_slots=8, rows_per_slot=2)
    assert pool.allocated == 0
    slot = pool.acquire()
    first = pool.cache(slot, _features(tiny_model, 1), rows=2)
    assert pool.allocated == 1
    pool.release(slot)
    again = pool.cache(pool.acquire(), _features(tiny_model, 1, seed=1), rows=1)
    assert pool.allocated == 1 and again.self_k.data_ptr() == first.self_k.data_ptr()
    assert again.seqlens.tolist() == [0]


def test_batch_options_are_checked():
    with pytest.raises(OptionError, match="batch_size"):
        BatchOptions(batch_size=0)
    with pytest.raises(OptionError):
        BatchOptions(batch_size="4")  # type: ignore[arg-type]
    assert BatchOptions(batch_size=3).batch_size == 3


def test_rows_per_stream_is_the_widest_decode():
    o = TranscribeOptions.from_kwargs(temperature=(0.0, 0.2), beam_size=5, best_of=3)
    assert rows_per_stream(o) == 5
    assert rows_per_stream(dataclasses.replace(o, beam_size=None)) == 3
    assert rows_per_stream(TranscribeOptions.from_kwargs(temperature=(0.0,), beam_size=None, best_of=5)) == 1


def test_each_input_keeps_its_own_warnings_and_time(tiny_model):
    """A warning raised while one input is decoded beside others is shown with that input's
    result and reported for it alone (the manifest's record), with the input's time."""
    import warnings

    audio = np.zeros(16000 * 2, dtype=np.float32)
    audio[4000:12000] = 0.1 * np.sin(np.arange(8000) / 5.0)
    plain = TranscribeOptions.from_kwargs(language="en", vad="off", temperature=(0.0,), sample_len=4)
    translating = plain.updated(task="translate", word_timestamps=True)  # warns: word timings of a translation
    from whispermedia.pipeline import stream

    jobs = [("plain", lambda: stream(audio, model=tiny_model, options=plain)),
            ("translated", lambda: stream(audio, model=tiny_model, options=translating)),
            ("plain again", lambda: stream(audio, model=tiny_model, options=plain))]
    scheduler = Scheduler(tiny_model, 3, rows_per_stream(plain), reports=True)
    shown_with = {}
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        for key, result in scheduler.run(jobs):
            assert not isinstance(result, Exception), result
            shown_with[key] = [str(w.message) for w in shown]
            shown.clear()
            report = scheduler.report(key)
            assert report.seconds > 0 and scheduler.report(key) is None  # told once
            assert (key == "translated") == any("translation" in m for m in report.warnings)
    assert any("translation" in m for m in shown_with["translated"])
    assert not any("translation" in m for k in ("plain", "plain again") for m in shown_with[k])


def test_stopping_early_frees_every_slot_once(tiny_model):
    """The caller may stop at any result (a run that ended in the round being yielded is not
    given back twice) and the pool's slots are all free again."""
    from whispermedia.pipeline import stream

    audio = np.zeros(16000, dtype=np.float32)
    audio[2000:9000] = 0.1 * np.sin(np.arange(7000) / 5.0)
    options = TranscribeOptions.from_kwargs(language="en", vad="off", temperature=(0.0,), beam_size=None,
                                            sample_len=3)
    scheduler = Scheduler(tiny_model, 2, 1)
    results = scheduler.run([(i, lambda: stream(audio, model=tiny_model, options=options)) for i in range(4)])
    next(results)
    results.close()
    assert sorted(scheduler.pool._free) == [0, 1]


def test_a_failing_input_is_its_own_result(tiny_model):
    """An input that cannot be opened is reported beside the others; the run goes on."""
    def broken():
        raise ValueError("no such input")

    results = list(Scheduler(tiny_model, 2, 1).run([("bad", broken)]))
    assert [k for k, _ in results] == ["bad"] and isinstance(results[0][1], ValueError)


# -- real speech, end to end -------------------------------------------------------------------

def _inputs():
    """Short clips and one of several windows (three clips with silence between, 47 s)."""
    from whispermedia.media import load_audio

    files = [SPEECH / "jfk.flac", SPEECH / "arctic_a0007.flac", MULTI / "de.flac", SPEECH / "arctic_a0009.flac"]
    gap = np.zeros(16000 * 3, dtype=np.float32)
    long = np.concatenate([load_audio(str(SPEECH / "jfk.flac")), gap, load_audio(str(MULTI / "fr.flac")), gap,
                           load_audio(str(SPEECH / "jfk.flac")), gap, load_audio(str(SPEECH / "arctic_a0009.flac"))])
    return [str(f) for f in files[:2]] + [long] + [str(f) for f in files[2:]]


def _alone(audio, options, seed=0):
    from whispermedia.pipeline import stream

    s = stream(audio, options=options)
    s.generator = torch.Generator().manual_seed(seed)
    return s.collect()


def _by_input(results, inputs):
    out = [None] * len(inputs)
    for key, value in results:
        assert not isinstance(value, Exception), value
        out[next(i for i, x in enumerate(inputs) if x is key)] = value
    return out


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["default", "fallback"])
def test_every_file_is_identical_to_batch_1(preset):
    """Text, segments, tokens, temperatures and word times of every file, for batch sizes 1 and 3
    equal the file transcribed alone; "fallback" forces every window down the
    temperature ladder (beams at 0, best_of samples above) with conditioning on."""
    if preset == "fallback":
        options = TranscribeOptions.from_kwargs(temperature=(0.0, 0.5, 1.0), beam_size=3, best_of=3,
                                                logprob_threshold=-0.05, condition_on_previous_text=True,
                                                word_timestamps=True)
    else:
        options = TranscribeOptions.from_kwargs(word_timestamps=True)
    inputs = _inputs()
    expected = [_alone(x, options) for x in inputs]
    if preset == "fallback":
        temps = {s.temperature for t in expected for s in t.segments}
        assert temps - {0.0}, "the fixture must make windows fall back"
    assert len({s.seek for s in expected[2].segments}) > 1  # the long input took several windows
    for batch_size in (1, 3):
        got = _by_input(transcribe_many(inputs, options=options, batch_size=batch_size), inputs)
        for g, e in zip(got, expected):
            assert g == e
            assert [[(w.word, w.start, w.end, w.probability) for w in s.words] for s in g.segments] == \
                   [[(w.word, w.start, w.end, w.probability) for w in s.words] for s in e.segments]


@pytest.mark.slow
def test_results_come_as_each_file_finishes_and_errors_stay_per_file(tmp_path):
    missing = str(tmp_path / "missing.flac")
    inputs = [_inputs()[2], str(SPEECH / "arctic_a0007.flac"), missing]
    options = TranscribeOptions.from_kwargs(preset="greedy", language="en")
    order = [key for key, _ in transcribe_many(inputs, options=options, batch_size=3)]
    results = dict((id(k), v) for k, v in transcribe_many(inputs, options=options, batch_size=2))
    assert order[0] is inputs[2] and order[-1] is inputs[0]  # the long file ends last
    assert isinstance(results[id(missing)], Exception)
    assert results[id(inputs[1])] == _alone(inputs[1], options)


# -- wm run --batch-size -----------------------------------------------------------------------

def _wm(*args):
    from click.testing import CliRunner

    from whispermedia.cli import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_batch_size_is_one_flag_defined_once_and_documented():
    import click

    from whispermedia.batch_options import BatchOptions
    from whispermedia.cli import run_command
    from whispermedia.cli_options import flag_of
    from whispermedia.options import option_fields

    docs = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text(encoding="utf-8")
    flags = {o for p in run_command.get_params(click.Context(run_command)) for o in p.opts}
    for f, spec in option_fields(BatchOptions):
        assert (flag_of(f.name) in flags) == spec.cli
        if spec.cli:
            assert f"| `{flag_of(f.name)} " in docs


def test_a_bad_batch_size_is_a_usage_error_before_the_model(tmp_path):
    result = _wm("run", "--batch-size", "0", str(SPEECH / "jfk.flac"), "-o", str(tmp_path))
    assert result.exit_code == 2 and "--batch-size" in result.output and "must be >= 1" in result.output
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_wm_run_writes_the_same_files_at_any_batch_size(tmp_path):
    inputs = [str(SPEECH / n) for n in ("jfk.flac", "arctic_a0007.flac", "arctic_a0009.flac")]
    outputs = {}
    for size in ("1", "3"):
        out = tmp_path / size
        result = _wm("run", "--model", "tiny.en", "--progress", "none", "--batch-size", size, "-p", "json,srt",
                     "--temperature", "0,0.6", "--logprob-threshold", "-0.05", "-o", str(out), *inputs)
        assert result.exit_code == 0, result.output
        outputs[size] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    assert len(outputs["1"]) == 6 and outputs["1"] == outputs["3"]
