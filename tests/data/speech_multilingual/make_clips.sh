#!/usr/bin/env bash
# Regenerates the multilingual clips of this folder from texts.json (needs espeak-ng, sox, python3).
#   bash tests/data/speech_multilingual/make_clips.sh
# Each clip: espeak-ng (voice, speed in words per minute and pitch from texts.json, amplitude 35)
# -> sox: 16 kHz mono 16-bit FLAC (compression 8), trailing silence trimmed, 0.3 s of silence
# appended. mixed/en_fr.flac: its parts (English, voice en-us, then French, voice fr-fr) back to
# back, each followed by 0.5 s of silence, then the same FLAC step.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp" <<'PY'
import json, os, subprocess, sys
tmp = sys.argv[1]
clips = json.load(open("texts.json", encoding="utf-8"))
def say(voice, text, wav, speed=175, pitch=50):
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-a", "35", "-w", wav, text], check=True)
def flac(src, dst):
    subprocess.run(["sox", "-R", src, "-r", "16000", "-c", "1", "-b", "16", "-C", "8", dst,
                    "reverse", "silence", "1", "0.05", "0.1%", "reverse", "pad", "0", "0.3"], check=True)
for name, clip in clips.items():
    if "parts" in clip:
        wavs = []
        for i, part in enumerate(clip["parts"]):
            say(part["voice"], part["text"], f"{tmp}/part{i}.wav", part["speed"], part["pitch"])
            subprocess.run(["sox", "-R", f"{tmp}/part{i}.wav", "-r", "16000", "-c", "1", "-b", "16",
                            f"{tmp}/part{i}.16k.wav", "pad", "0", str(clip.get("gap", 0.5))], check=True)
            wavs.append(f"{tmp}/part{i}.16k.wav")
        os.makedirs(os.path.dirname(name) or ".", exist_ok=True)
        subprocess.run(["sox", "-R", *wavs, f"{tmp}/joined.wav"], check=True)
        flac(f"{tmp}/joined.wav", name)
    else:
        say(clip["voice"], clip["text"], f"{tmp}/{name}.wav", clip["speed"], clip["pitch"])
        flac(f"{tmp}/{name}.wav", name)
PY
ls -l *.flac mixed/*.flac
