"""The Gradio demo (`demo/app.py`) as a user meets it: a real server in a subprocess, driven through
gradio_client (captions, a profile, bad inputs, uploads deleted) and through a real headless Chromium
(an example end to end; screenshot kept as a CI artefact). Tiny random checkpoint: the captions are
gibberish, so the tests check structure, not content."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gradio_server import free_port, wait_until_serving
from media_fixtures import make_audio, make_video, random_bytes, write_bytes

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = Path(os.environ.get("ECMC_CI_ARTIFACTS", ROOT / "outputs" / "ci-artifacts")) / "demo.png"
MAX_FILE_MB, MAX_SECONDS = 1, 8  # small caps so that the over-the-cap inputs stay small


@pytest.fixture(scope="module")
def server(tiny_checkpoint, tmp_path_factory):
    """(url, upload folder, server log): the demo on a free port, serving the tiny checkpoint."""
    uploads = tmp_path_factory.mktemp("gradio-uploads")
    port = free_port()
    env = dict(os.environ, GRADIO_TEMP_DIR=str(uploads), GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1",
               HF_HUB_DISABLE_TELEMETRY="1", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    log_path = uploads.parent / "demo-server.log"
    log = open(log_path, "w")
    started = time.perf_counter()
    command = [sys.executable, "-m", "demo.app", "--checkpoint", str(tiny_checkpoint), "--port", str(port),
               "--max-file-mb", str(MAX_FILE_MB), "--max-seconds", str(MAX_SECONDS)]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_serving(proc, url, log_path, timeout=120)
        print(f"demo server ready in {time.perf_counter() - started:.1f} s")
        yield url, uploads, log_path
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server[0], verbose=False)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """Real media (named upload-*) and bad files."""
    d = tmp_path_factory.mktemp("demo-media")
    png = d / "upload-face.png"
    from PIL import Image

    Image.new("RGB", (32, 32), (200, 100, 50)).save(png)
    return {
        "clip": make_video(d / "upload-clip.mp4", 3, size=(64, 64), audio_rate=16000),
        "session": make_video(d / "upload-session.mp4", 6, size=(64, 64), audio_rate=16000, frequency=220),
        "long": make_video(d / "upload-long.mp4", MAX_SECONDS + 2, size=(32, 32), fps=5, audio_rate=16000),
        "silent": make_video(d / "upload-silent.mp4", 3, size=(64, 64)),
        "voice": make_audio(d / "upload-voice.wav", 3, rate=16000),
        "text": write_bytes(d / "upload-notes.mp4", b"these are notes, not a video\n" * 20),
        "png": png,
        "empty": write_bytes(d / "upload-empty.mp4", b""),
        "huge": random_bytes(d / "upload-huge.mp4", size=int(MAX_FILE_MB * 1e6) + 200_000),
    }


def _caption(client, video, transcript="I cannot remember what day it is.", **kw):
    from gradio_client import handle_file

    args = dict(video=handle_file(str(video)), audio=None, transcript=transcript, start=None, end=None)
    args.update(kw)
    return client.predict(**args, api_name="/caption")


def _leftover_uploads(uploads: Path) -> list[str]:
    """Uploaded bytes still on the server (the cached example clips and Gradio's empty staging files aside)."""
    return sorted(str(p.relative_to(uploads)) for p in uploads.rglob("*")
                  if p.is_file() and p.stat().st_size and not p.name.startswith("s005_"))


def test_caption_and_profile(client, server, media):
    from gradio_client import handle_file

    t0 = time.perf_counter()
    emotion, cognition = _caption(client, media["clip"])
    print(f"caption request {time.perf_counter() - t0:.2f} s")
    assert isinstance(emotion, str) and emotion.strip() and isinstance(cognition, str) and cognition.strip()

    table = {"headers": ["file", "start", "end", "transcript"],
             "data": [["", 0.0, 2.0, "I went to the shop this morning."], ["", 2.0, 4.0, "What did you ask me?"],
                      ["", 4.0, None, "I forgot my appointment."]]}
    t0 = time.perf_counter()
    captions, profile, chart, screening = client.predict(files=[handle_file(str(media["session"]))], table=table,
                                                         api_name="/profile")
    print(f"profile request (3 utterances) {time.perf_counter() - t0:.2f} s")
    assert len(captions["data"]) == 3 and all(len(row) == 7 for row in captions["data"])
    assert [row[1:3] for row in captions["data"]] == [[0.0, 2.0], [2.0, 4.0], [4.0, None]]
    assert isinstance(profile, str) and profile.strip()
    assert chart["type"] == "matplotlib" and chart["plot"].startswith("data:image/")
    assert "depression" in screening and "anxiety" in screening and "not a diagnosis" in screening
    assert _leftover_uploads(server[1]) == []  # uploads deleted after each request
    log = server[2].read_text()
    assert "profiled 3 utterances" in log  # the log has timings, never transcripts, captions or profiles
    for private in ("cannot remember", "shop this morning", emotion.strip()[:30], profile.strip()[:30]):
        assert private not in log


def test_one_recording_fills_the_turns_table_then_profiles(client, server, interview_sessions):
    pytest.importorskip("faster_whisper")
    from gradio_client import handle_file

    root, _, truth = interview_sessions
    session = root / truth[0]["video_path"]
    t0 = time.perf_counter()
    table = client.predict(files=[handle_file(str(session))], api_name="/turns")
    print(f"turns request ({truth[0]['duration']:.0f} s recording) {time.perf_counter() - t0:.2f} s")
    rows = table["data"]
    assert [row[0] for row in rows] == [session.name] * 2  # greeting and personal information dropped
    for (_, start, end, transcript), utt in zip(rows, truth[0]["utterances"]):
        assert abs(start - utt["start"]) <= 0.5 and abs(end - utt["end"]) <= 0.5 and transcript.strip()
    rows[1][3] = "I went to the shop this morning."  # the table stays editable: a corrected transcript
    captions, profile, _, _ = client.predict(files=[handle_file(str(session))], table={"headers": table["headers"],
                                                                                       "data": rows},
                                             api_name="/profile")
    assert [row[1:3] for row in captions["data"]] == [row[1:3] for row in rows] and profile.strip()
    assert _leftover_uploads(server[1]) == []
    log = server[2].read_text()
    assert "found 2 turns" in log and not [r[3] for r in rows if r[3][:20] in log]  # never a transcript


@pytest.mark.parametrize("kind, message", [
    ("text", "cannot be opened as video"),
    ("png", "unsupported file type .png"),
    ("empty", "empty (0 bytes)"),
    ("silent", "has no audio track"),
    ("long", f"the limit is {MAX_SECONDS} s"),
])
def test_bad_uploads_give_clear_errors(client, server, media, kind, message):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as info:
        _caption(client, media[kind])
    assert message in str(info.value) and media[kind].name in str(info.value)
    assert str(server[1]) not in str(info.value)  # the server's temp paths are not shown
    assert _leftover_uploads(server[1]) == []


def test_other_bad_inputs_and_app_keeps_serving(client, server, media):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    with pytest.raises(ValueError, match="exceeds the maximum file size"):  # refused before upload (server: 413)
        _caption(client, media["huge"])
    with pytest.raises(AppError, match="transcript is empty"):
        _caption(client, media["clip"], transcript="   ")
    with pytest.raises(AppError, match="start 2.000 s is not before end 1.000 s"):
        _caption(client, media["clip"], start=2.0, end=1.0)
    with pytest.raises(AppError, match="row 2: no uploaded file is named 'missing.mp4'"):
        client.predict(files=[handle_file(str(media["clip"]))], api_name="/profile",
                       table={"headers": ["file", "start", "end", "transcript"],
                              "data": [["upload-clip.mp4", None, None, "fine"], ["missing.mp4", None, None, "x"]]})
    assert _leftover_uploads(server[1]) == []
    emotion, cognition = _caption(client, media["clip"])  # still answering
    assert emotion.strip() and cognition.strip()


def test_silent_video_with_a_separate_audio_clip(client, server, media):
    from gradio_client import handle_file

    emotion, cognition = _caption(client, media["silent"], audio=handle_file(str(media["voice"])))
    assert emotion.strip() and cognition.strip()
    assert _leftover_uploads(server[1]) == []


@pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian chromium (scripts/setup.sh installs it)")
def test_browser_runs_an_example(server):
    """Headless Chromium: click the first Caption example, submit, wait for the captions, screenshot."""
    from playwright.sync_api import sync_playwright

    t0 = time.perf_counter()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True,
                                    args=["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(server[0], wait_until="networkidle")
            page.locator(".gallery-item, tr.tr-body").first.click()
            transcript = page.get_by_label("Transcript")
            page.wait_for_function("el => el.value.length > 0", arg=transcript.element_handle(), timeout=15_000)
            page.get_by_role("button", name="Caption", exact=True).click()
            emotion = page.locator("#emotion-caption textarea")
            page.wait_for_function("el => el.value.trim().length > 0", arg=emotion.element_handle(), timeout=60_000)
            assert page.locator("#cognition-caption textarea").input_value().strip()
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    print(f"browser example end to end {time.perf_counter() - t0:.1f} s; screenshot {SCREENSHOT}")
    assert SCREENSHOT.stat().st_size > 10_000
