"""ECMCProcessor on real media (ECMC-Synth sessions, ffmpeg-made clips): shapes, segments, masks,
prompt layout, labels, persistence; prompts and the caption format."""

import json

import numpy as np
import pytest
import torch
from media_fixtures import make_audio, make_video

from modeling_ecmc.prompts_ecmc import get_prompt
from modeling_ecmc.vocabulary_ecmc import COGNITION_TOKEN, EMOTION_TOKEN, format_caption, split_caption


@pytest.fixture(scope="module")
def processor():
    from transformers import AutoTokenizer

    from modeling_ecmc.presets import build_processor, load_llm_tokenizer, minilm_path, offline_config

    llm_tokenizer = load_llm_tokenizer()
    llm_tokenizer.add_special_tokens({"additional_special_tokens": [EMOTION_TOKEN, COGNITION_TOKEN]})
    config = offline_config(emotion_token_id=llm_tokenizer.convert_tokens_to_ids(EMOTION_TOKEN),
                            cognition_token_id=llm_tokenizer.convert_tokens_to_ids(COGNITION_TOKEN))
    return build_processor(config, llm_tokenizer, AutoTokenizer.from_pretrained(minilm_path()))


@pytest.fixture(scope="module")
def synth_rows(tmp_path_factory):
    from processing_ecmc.synth import generate_synth

    root = tmp_path_factory.mktemp("synth")
    manifest = generate_synth(root, preset="tiny", seed=0, progress=False)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    for row in rows:
        row["video_path"] = str(root / row["video_path"])
    return rows


def test_session_segments_to_model_inputs(processor, synth_rows):
    rows = synth_rows[:3]
    out = processor(videos=[r["video_path"] for r in rows], starts=[r["start"] for r in rows],
                    ends=[r["end"] for r in rows], transcripts=[r["transcript"] for r in rows])
    assert out["pixel_values_videos"].shape == (3, processor.num_frames, 3, 64, 64)
    durations = [r["end"] - r["start"] for r in rows]
    assert out["audio_attention_mask"].sum(1).tolist() == [round(d * 16000) for d in durations]
    assert out["input_values"].shape[1] == max(round(d * 16000) for d in durations)
    assert out["modality_mask"].all()
    ids = processor.placeholder_ids
    prompt = out["input_ids"][0].tolist()
    assert prompt[0] == processor.tokenizer.bos_token_id
    assert prompt[1 : 1 + 8] == [ids["emotion"]] * 8 and prompt[9:17] == [ids["cognition"]] * 8
    assert "labels" not in out


def test_video_without_audio_track_marks_audio_missing(processor, tmp_path):
    silent = make_video(tmp_path / "silent.mp4", seconds=3, fps=10, size=(64, 64))
    out = processor(videos=str(silent), transcripts="I am not sure where we are.")
    assert out["modality_mask"].tolist() == [[True, False, True]]
    assert "input_values" not in out


def test_separate_audio_file_and_mixed_batch(processor, tmp_path):
    wav = make_audio(tmp_path / "a.wav", seconds=2.5, rate=44100, channels=2)
    clip = make_video(tmp_path / "c.mp4", seconds=3, fps=10, size=(64, 64), audio_rate=48000)
    out = processor(videos=[None, str(clip)], audios=[str(wav), None], transcripts=["hello there", None])
    assert out["modality_mask"].tolist() == [[False, True, True], [True, True, False]]
    wav_len, clip_len = out["audio_attention_mask"].sum(1).tolist()
    assert wav_len == 40000  # 2.5 s resampled from 44.1 kHz stereo to 16 kHz mono
    assert abs(clip_len - 48000) <= 0.05 * 16000  # a whole AAC track may run ~20 ms past 3 s
    assert out["text_attention_mask"][1].sum() == 0


def test_captions_give_labels_on_caption_tokens_only(processor):
    rng = np.random.RandomState(0)
    caption = format_caption("The speaker looks sad.", "Memory deficit: forgets the date.")
    out = processor(waveforms=[rng.randn(16000).astype(np.float32)] * 2, transcripts=["a", "b"],
                    captions=[caption, ("Calm and neutral.", "No obvious impairment.")])
    labels, ids = out["labels"], out["input_ids"]
    prompt_len = len(processor.prompt_ids())
    assert (labels[:, :prompt_len] == -100).all()
    first = labels[0][labels[0] != -100]
    assert first[-1] == processor.tokenizer.eos_token_id
    assert processor.tokenizer.decode(first[:-1]) == caption
    assert torch.equal(ids[0, prompt_len : prompt_len + len(first)], first)
    assert (out["attention_mask"].sum(1) == (labels != -100).sum(1) + prompt_len).all()


@pytest.mark.parametrize("kwargs, message", [
    (dict(transcripts="   "), "transcript is empty"),
    (dict(), "no input"),
    (dict(transcripts=["a", "b"], starts=[0.0]), "starts has 1 items"),
])
def test_bad_processor_inputs(processor, kwargs, message):
    with pytest.raises(ValueError, match=message):
        processor(**kwargs)


def test_single_caption_pair_is_one_sample(processor):
    out = processor(transcripts="I feel fine.", captions=("Calm.", "No obvious impairment."))
    assert out["labels"].shape[0] == 1


def test_missing_media_file_names_the_file(processor, tmp_path):
    from modeling_ecmc.media_ecmc import MediaError

    with pytest.raises(MediaError, match="nope.mp4"):
        processor(videos=str(tmp_path / "nope.mp4"), transcripts="x")


def test_processor_round_trip(processor, tmp_path):
    from modeling_ecmc.processing_ecmc import ECMCProcessor

    processor.save_pretrained(tmp_path)
    loaded = ECMCProcessor.from_pretrained(tmp_path)
    assert (loaded.num_frames, loaded.num_query_tokens, loaded.sampling_rate) == (8, 8, 16000)
    assert loaded.placeholder_ids == processor.placeholder_ids
    assert loaded.prompt_ids() == processor.prompt_ids()


def test_profile_and_detection_prompts(processor):
    profile = processor.profile_prompt(["Emotion:\nsad\n\nCognition:\nnone"])
    assert "<|im_start|>" in profile and "1. Emotion:" in profile
    with_profile = processor.detection_prompt("I can't sleep.", "depression", profile="Low mood.")
    without = processor.detection_prompt("I can't sleep.", "depression")
    assert "Low mood." in with_profile and "profile" not in without
    assert "抑郁" in get_prompt("detection", "zh", profile_block="", transcript="t", disorder="抑郁")


def test_caption_format_round_trip():
    caption = format_caption(" Sad voice. ", "Memory deficit.\nForgets things.")
    assert split_caption(caption) == {"emotion": "Sad voice.", "cognition": "Memory deficit.\nForgets things."}
    assert split_caption("just text") == {"emotion": "just text", "cognition": ""}
    assert split_caption("Emotion: calm") == {"emotion": "calm", "cognition": ""}
    with pytest.raises(ValueError, match="unknown prompt language"):
        get_prompt("caption", "fr")


# ----- transformers' conventions beside ours (issue: a Hub user's first five minutes)
def test_audio_alias_and_decoded_arrays_where_paths_go(processor, tmp_path):
    """`audio=` is `audios=`; a (T, H, W, 3) uint8 array in `videos=` and a 1-D float array in `audio=`
    give exactly what `frames=` / `waveforms=` give (frames sampled to num_frames); a rate other than
    the feature extractor's, or both names at once, is a clear error."""
    wav = make_audio(tmp_path / "a.wav", seconds=2.5, rate=16000)
    by_path = processor(audio=str(wav), transcripts="hello")
    assert torch.equal(by_path["input_values"], processor(audios=str(wav), transcripts="hello")["input_values"])
    rng = np.random.RandomState(0)
    video = rng.randint(0, 255, (20, 48, 64, 3), dtype=np.uint8)
    wave = (0.1 * rng.randn(32000)).astype(np.float32)
    arrays = processor(videos=video, audio=wave, transcripts="hello", sampling_rate=16000)
    picked = video[np.linspace(0, 19, processor.num_frames).round().astype(int)]
    decoded = processor(frames=[picked], waveforms=[wave], transcripts=["hello"])
    for key in ("pixel_values_videos", "input_values", "audio_attention_mask", "modality_mask"):
        assert torch.equal(arrays[key], decoded[key]), key
    listed = processor(videos=[video, None], audio=[None, wave], transcripts=["a", "b"])
    assert listed["modality_mask"].tolist() == [[True, False, True], [False, True, True]]
    with pytest.raises(ValueError, match="8000 Hz was given, but the feature extractor expects 16000 Hz"):
        processor(audio=wave, sampling_rate=8000)
    with pytest.raises(ValueError, match="audio= or audios="):
        processor(audio=wave, audios=str(wav))


def test_post_process_image_text_to_text_takes_generate_output_as_it_is(processor):
    """transformers' decoding name: the whole generate output (prompt included, any language) ->
    the captions, the same as post_process_caption with the prompt length."""
    caption = format_caption("The speaker sounds calm.", "No signs of cognitive impairment.")
    new = processor.tokenizer(caption, add_special_tokens=False)["input_ids"]
    prompts = processor.caption_inputs(language=["en", "zh"], batch=2)["input_ids"]
    full = torch.cat([prompts, torch.tensor([new, new])], dim=1)
    assert processor.post_process_image_text_to_text(full) == [caption, caption]
    assert processor.post_process_caption(full, prompts.shape[1]) == processor.post_process_caption(full)
    assert processor.post_process_image_text_to_text(torch.tensor([new])) == [caption]  # new tokens only


def test_utterances_under_two_seconds_are_refused_at_inference(processor, tmp_path):
    """The paper's rule (2 s, the data build's limit) at inference: a one-frame video (0.04 s) and a
    0.2 s WAV are errors naming the file; lowering `min_seconds` warns once and captions them."""
    from modeling_ecmc.media_ecmc import MediaError

    one_frame = make_video(tmp_path / "one_frame.mp4", seconds=0.04, fps=25, size=(64, 64))
    short_wav = make_audio(tmp_path / "short.wav", seconds=0.2, rate=16000)
    with pytest.raises(MediaError, match=r"one_frame.mp4: the utterance lasts 0.04 s, shorter than min_seconds=2"):
        processor(videos=str(one_frame), transcripts="hi")
    with pytest.raises(MediaError, match=r"short.wav: the utterance lasts 0.20 s, shorter than min_seconds=2"):
        processor(audios=str(short_wav), transcripts="hi")
    long_clip = make_video(tmp_path / "long.mp4", seconds=4, fps=10, size=(64, 64), audio_rate=16000)
    with pytest.raises(MediaError, match="lasts 1.00 s"):
        processor(videos=str(long_clip), starts=1.0, ends=2.0)  # a short segment of a long file
    processor.min_seconds = 0.1
    try:
        with pytest.warns(UserWarning, match="below the paper's 2 s"):
            out = processor(audios=str(short_wav), transcripts="hi")
        assert int(out["audio_attention_mask"].sum()) == 3200
    finally:
        processor.min_seconds = 2.0


def test_prompt_transcript_puts_the_words_before_the_instruction(processor, tmp_path):
    """`prompt_transcript`: the transcript sits between the placeholders and the caption instruction,
    in training and generation prompts alike, survives save/load, and is cut off with the prompt;
    a row without a transcript gets the plain prompt; forgetting the transcripts is an error."""
    from modeling_ecmc.processing_ecmc import ECMCProcessor

    processor.save_pretrained(tmp_path)
    words = ECMCProcessor.from_pretrained(tmp_path, prompt_transcript=True)
    said = "I had breakfast and read the paper."
    plain, with_words = processor.prompt_ids(), words.prompt_ids("en", said)
    tokenizer = processor.tokenizer
    block = tokenizer(get_prompt("transcript", "en", transcript=said), add_special_tokens=False)["input_ids"]
    head = len(plain) - len(processor._instruction_ids("en"))
    assert with_words == plain[:head] + block + plain[head:]
    assert words.prompt_ids("en", None) == plain == processor.prompt_ids("en", said)  # off: the words are ignored
    words.save_pretrained(tmp_path / "words")
    assert ECMCProcessor.from_pretrained(tmp_path / "words").prompt_transcript is True

    caption = format_caption("The speaker sounds calm.", "No signs of cognitive impairment.")
    train = words.caption_inputs([caption, caption], language="en", transcripts=[said, None])
    assert (train["labels"][0] != -100).sum() == (train["labels"][1] != -100).sum()
    assert train["attention_mask"][0].sum() - train["attention_mask"][1].sum() == len(block)
    with pytest.warns(UserWarning, match="1 of 2 utterances have none"):
        generate = words.caption_inputs(language="en", batch=2, transcripts=[said, None])["input_ids"]
    new = torch.tensor([tokenizer(caption, add_special_tokens=False)["input_ids"]] * 2)
    assert words.post_process_image_text_to_text(torch.cat([generate, new], dim=1)) == [caption, caption]
    with pytest.raises(ValueError, match="pass transcripts="):
        words.caption_inputs(language="en", batch=1)
