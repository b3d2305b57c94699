#!/usr/bin/env bash
# Regenerates the golden token files that tests/test_fidelity.py checks: openai-whisper's results
# on the committed clips, same weights as ours (bench/fidelity.py --write-golden; each command
# also prints how our pipeline compares). Needs openai-whisper installed beside whispermedia.
#   bash tests/golden/make_golden.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
F="python bench/fidelity.py"
EN=tests/data/speech                 # real English speech (3 clips)
ML=tests/data/speech_multilingual    # espeak-ng clips in six languages
B=tests/golden/tokens_base.json
T=tests/golden/tokens_tiny.en.json
rm -f "$B" "$T"

# base (multilingual): greedy with language detection on every clip; translation
$F --model base $EN $ML --write-golden $B --case greedy_detect_language
$F --model base --task translate $ML --write-golden $B --case translate

# tiny.en (English only, fast): one case per decoding option family
$F --model tiny.en $EN --write-golden $T --case greedy
$F --model tiny.en $EN --beam-size 5 --write-golden $T --case beam5
$F --model tiny.en $EN --beam-size 3 --patience 2 --length-penalty 0.6 --write-golden $T --case beam3_patience_length_penalty
$F --model tiny.en $EN --fallback --write-golden $T --case fallback_thresholds
$F --model tiny.en $EN --temperature 0,0.2,0.4 --best-of 3 --logprob-threshold -0.15 --compression-ratio-threshold 1.5 \
   --no-speech-threshold 0.3 --seed 0 --write-golden $T --case fallback_forced_seeded
$F --model tiny.en $EN --initial-prompt "President Kennedy, CMU Arctic prompts." --clip-timestamps 0,1.5,1.5 \
   --write-golden $T --case initial_prompt_conditioned_windows
$F --model tiny.en $EN --initial-prompt "Gregson, superlative." --carry-initial-prompt --clip-timestamps 0,1,1,2,2 \
   --write-golden $T --case carry_initial_prompt
$F --model tiny.en $EN --prefix "And so" --write-golden $T --case prefix
$F --model tiny.en $EN --suppress-tokens=-1,11,13 --no-suppress-blank --write-golden $T --case suppress_tokens_blank
$F --model tiny.en $EN --without-timestamps --write-golden $T --case without_timestamps
$F --model tiny.en $EN --max-initial-timestamp 0 --write-golden $T --case max_initial_timestamp
$F --model tiny.en $EN --clip-timestamps 0.5,2.5,2.8 --no-condition-on-previous-text --write-golden $T --case clip_timestamps
$F --model tiny.en $EN --word-timestamps --write-golden $T --case word_timestamps
$F --model tiny.en $EN --word-timestamps --hallucination-silence-threshold 0.5 --clip-timestamps 0,2,2 \
   --write-golden $T --case word_timestamps_hallucination_silence
