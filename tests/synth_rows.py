"""A fixture shared by the analysis tests: the rows of ECMC-Synth's tiny preset (manifest, no data set)."""

import json

import pytest

from modeling_ecmc.vocabulary_ecmc import reference_caption


@pytest.fixture(scope="module")
def synth_rows(tmp_path_factory):
    from processing_ecmc.synth import generate_synth

    manifest = generate_synth(tmp_path_factory.mktemp("synth"), "tiny", seed=0, progress=False)
    return [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]


def reference_captions(rows):
    return [reference_caption(r) for r in rows]
