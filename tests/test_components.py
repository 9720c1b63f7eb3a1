"""The paper preset assembled by config (modeling_ecmc/components.py, `model.preset: paper`) from the
real transformers classes — VideoMAE with its image processor, HuBERT (group-norm) with its feature
extractor, BERT with its tokenizer, a Llama decoder with its tokenizer — at small widths with random
weights, saved to local folders as a user's own models would be: processor -> feature cache -> both
stages -> checkpoint -> `pipeline` in a fresh Python. Plus the errors a bad `model.components` gets."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from training_ecmc.config import ConfigError, load_config
from training_ecmc.run import run_training

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def component_folders(tmp_path_factory):
    """{part: folder}: each a small random model of the paper's class, saved with its preprocessor."""
    from transformers import (BertConfig, BertModel, HubertConfig, HubertModel, LlamaConfig, LlamaForCausalLM,
                              VideoMAEConfig, VideoMAEImageProcessor, VideoMAEModel, Wav2Vec2FeatureExtractor,
                              AutoTokenizer)

    from modeling_ecmc.presets import load_llm_tokenizer, minilm_path

    root = tmp_path_factory.mktemp("components")
    torch.manual_seed(0)
    parts = {
        "video": (VideoMAEModel(VideoMAEConfig(image_size=32, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=32,
                                               num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)),
                  VideoMAEImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})),
        # feat_extract_norm "group", as hubert-base: its feature extractor gives no attention mask
        "audio": (HubertModel(HubertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                                           conv_dim=[32, 32, 32], conv_kernel=[10, 8, 4], conv_stride=[5, 8, 8],
                                           num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)),
                  Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True, return_attention_mask=False)),
        "text": (BertModel(BertConfig(hidden_size=24, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48)),
                 AutoTokenizer.from_pretrained(minilm_path())),
        "llm": (LlamaForCausalLM(LlamaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                                             intermediate_size=64, vocab_size=49152, tie_word_embeddings=True,
                                             bos_token_id=1, eos_token_id=2, pad_token_id=2)),
                load_llm_tokenizer()),
    }
    folders = {}
    for name, (model, preprocessor) in parts.items():
        folders[name] = root / name
        model.save_pretrained(folders[name])
        preprocessor.save_pretrained(folders[name])
    folders["qformer_init"] = folders["text"]
    return folders


def paper_config_file(tmp_path, components, dataset, **extra_model):
    config = {
        "output_dir": str(tmp_path / "out"),
        "model": {"preset": "paper", "components": {k: str(v) for k, v in components.items()},
                  "overrides": {"num_query_tokens": 4, "bridge_hidden_size": 30}, **extra_model},
        "data": {"synth_preset": None, "dataset": str(dataset), "cache_dir": str(tmp_path / "cache")},
        "stage1": {"epochs": 2, "batch_size": 4, "learning_rate": 1e-3},
        "stage2": {"epochs": 1, "batch_size": 4, "learning_rate": 3e-3},
        "training": {"logging_steps": 1},
        "evaluate": {"max_new_tokens": 8},
    }
    path = tmp_path / "paper.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


FRESH_PIPELINE = textwrap.dedent(
    """
    import json, sys
    sys.modules["modeling_ecmc"] = None  # as if our packages were not installed
    sys.modules["processing_ecmc"] = None
    from transformers import AutoModel, AutoProcessor, pipeline
    folder, video, audio, transcript = sys.argv[1:5]
    model = AutoModel.from_pretrained(folder, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    inputs = processor(videos=video, audio=audio or None, transcripts=transcript)
    ids = model.generate(**inputs, max_new_tokens=6, min_new_tokens=6)
    captioner = pipeline(model=folder, trust_remote_code=True)
    out = captioner({"video": video, "audio": audio or None, "transcript": transcript}, max_new_tokens=6)
    print(json.dumps({"model": type(model).__name__, "encoders": {m: type(e).__name__ for m, e in model.model.encoders.items()},
                      "keys": sorted(out), "new_tokens": ids.shape[1] - inputs["input_ids"].shape[1],
                      "caption_is_text": isinstance(out["caption"], str)}))
    """
)


def test_paper_preset_from_real_component_classes_trains_and_reloads(component_folders, tiny_synth_dataset, tmp_path):
    from modeling_ecmc import ECMCForConditionalGeneration
    from modeling_ecmc.processing_ecmc import ECMCProcessor
    from processing_ecmc.dataset_io import load_dataset_dict

    cfg = load_config(paper_config_file(tmp_path, component_folders, tiny_synth_dataset))
    final, histories = run_training(cfg)
    assert set(histories) == {1, 2} and all(any("loss" in h for h in hist) for hist in histories.values())

    init = tmp_path / "out" / "init"
    model = ECMCForConditionalGeneration.from_pretrained(init)
    processor = ECMCProcessor.from_pretrained(init)
    assert {m: type(e).__name__ for m, e in model.model.encoders.items()} == {
        "video": "VideoMAEModel", "audio": "HubertModel", "text": "BertModel"}
    from transformers import AutoModel

    for modality in ("video", "audio", "text"):  # the components' own weights, not a fresh init
        saved = AutoModel.from_pretrained(component_folders[modality]).state_dict()
        ours = model.model.encoders[modality].state_dict()
        assert all(torch.equal(ours[k], saved[k]) for k in saved), modality
    bert = AutoModel.from_pretrained(component_folders["qformer_init"]).state_dict()
    qformer = model.model.bridge["emotion"].qformers["text"].state_dict()
    assert torch.equal(qformer["encoder.layer.1.attention.attention.query.weight"],
                       bert["encoder.layer.1.attention.self.query.weight"])
    assert type(processor.image_processor).__name__.startswith("VideoMAEImageProcessor")
    assert processor.face_crop is True  # model.face_crop: on for the paper preset (real recordings)
    assert type(processor.feature_extractor).__name__ == "Wav2Vec2FeatureExtractor"

    row = load_dataset_dict(tiny_synth_dataset)["test"][0]
    video, audio = row["video_path"], row["audio_path"] or None  # no audio file: the video's own track
    inputs = processor(videos=[video], audios=[audio], transcripts=[row["transcript"]])
    assert tuple(inputs["pixel_values_videos"].shape) == (1, 4, 3, 32, 32)  # 4 frames through the image processor
    assert bool(inputs["audio_attention_mask"].all())  # one clip: nothing padded
    short = processor(frames=[None, None], waveforms=[torch.zeros(16000).numpy(), torch.zeros(8000).numpy()],
                      transcripts=["a", "b"])
    assert short["audio_attention_mask"].sum(1).tolist() == [16000, 8000]  # the padding is masked

    result = subprocess.run([sys.executable, "-c", FRESH_PIPELINE, str(final), video, audio or "", row["transcript"]],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["model"] == "ECMCForConditionalGeneration"
    assert report["encoders"] == {"video": "VideoMAEModel", "audio": "HubertModel", "text": "BertModel"}
    assert {"caption", "emotion", "cognition"} <= set(report["keys"]) and report["caption_is_text"]
    assert report["new_tokens"] == 6  # random weights: the text itself means nothing


def test_bad_components_fail_before_any_work(component_folders, tiny_synth_dataset, tmp_path):
    """An unknown part, a folder without weights, an id that resolves nowhere (offline), and an
    encoder whose hidden size disagrees with the config: ConfigErrors naming the part, before the
    feature cache or the initial checkpoint is written."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text(json.dumps({"model_type": "bert"}))
    cases = [
        ({"videoo": str(component_folders["video"])}, "unknown key 'videoo' in model.components"),
        ({**component_folders, "text": empty}, f"components.text: {empty} holds no weights"),
        ({**component_folders, "llm": "nobody/no-such-model"}, "components.llm: cannot read the config of 'nobody/no-such-model'"),
    ]
    for components, message in cases:
        with pytest.raises(ConfigError, match=message):
            run_training(load_config(paper_config_file(tmp_path, components, tiny_synth_dataset)), stages=(1,))
        assert not (tmp_path / "cache").exists() and not (tmp_path / "out" / "init").exists()

    from modeling_ecmc.components import ComponentError, assemble_from_components

    wider = {"model_type": "videomae", "image_size": 32, "patch_size": 16, "num_frames": 4, "tubelet_size": 2,
             "hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    with pytest.raises(ComponentError, match="components.video: .* hidden size 32, but the config expects a videomae of 64"):
        assemble_from_components({k: str(v) for k, v in component_folders.items()}, video_config=wider,
                                 num_query_tokens=4, bridge_hidden_size=30)
