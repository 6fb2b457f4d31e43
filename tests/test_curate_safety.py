"""``python -m embedkit curate`` on a user's only copy of their photos: run as a user would.

Each test runs the command in a fresh process on a tiny folder made in ``tmp_path`` (a few
images from ``data/``), then checks the exit status, what it printed and the files on disk:
every byte and link in FOLDER is hashed before and after, and must not change. Runs that
embed are marked slow (the network is loaded in each process).
"""

import csv
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, bomb_png
from embedkit.curate import _propose_split, printable_name
from embedkit.images import load_rgb

ENV = {**os.environ, "PYTHONPATH": str(REPO / "notebooks"), "EMBEDKIT_BACKBONE": "efficientnet_lite0"}
PHOTOS = [
    "astronaut-suit_original.jpg",
    "astronaut-suit_resize.jpg",
    "brick_original.jpg",
    "brick_brightness.jpg",
]


def _cli(*args, env=ENV, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "embedkit", "curate", *map(str, args)],
        env=env,
        capture_output=True,
        timeout=timeout,
    )


def _tree(folder: Path) -> dict:
    """Every entry below ``folder`` (links not followed): type and content digest or link target."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(os.fsencode(folder)):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                found[path] = ("link", os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                found[path] = ("file", hashlib.sha256(Path(os.fsdecode(path)).read_bytes()).hexdigest())
            else:
                found[path] = (stat.S_IFMT(st.st_mode), st.st_mtime_ns)
    return found


def _one_error_line(result, *words):
    err = result.stderr.decode("utf-8", "replace").strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert all(w in err for w in words), err


def _photos(folder: Path, names=PHOTOS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(REPO / "data" / "train" / name, folder / name)
    return folder


def _outputs(out: Path) -> dict:
    """The bytes of each output a user opens in ``out`` (following the published links)."""
    return {name: (out / name).read_bytes() for name in ("findings.json", "split.csv", "report.html")}


# --------------------------------------------------------------------------- data loss


@pytest.mark.slow
@pytest.mark.parametrize("where", ["folder itself", "inside folder", "holds folder"])
def test_out_or_export_touching_the_folder_is_refused_and_nothing_changes(tmp_path, where):
    # The reported loss: FOLDER X/clean with --out X --export links replaced every photo by a
    # link to itself. Now any DIR that is FOLDER, lies in it or holds it is refused up front.
    folder = _photos(tmp_path / "X" / "clean")
    out = {"folder itself": folder, "inside folder": folder / "results", "holds folder": tmp_path / "X"}[
        where
    ]
    before = _tree(tmp_path)
    result = _cli(folder, "--out", out, "--export", "links", "--quiet")
    assert result.returncode == 2
    _one_error_line(result, "output folder", "folder being curated")
    assert _tree(tmp_path) == before  # nothing created, moved or removed anywhere


@pytest.mark.parametrize("theirs", ["clean folder", "report file", "split link", "current folder"])
def test_what_the_user_keeps_in_the_output_folder_is_never_replaced(tmp_path, theirs):
    # DIR may already hold the user's own "clean" folder or "report.html": a run would replace
    # them. Only the links a run publishes are ever replaced; anything else is refused up front.
    folder = _photos(tmp_path / "photos", PHOTOS[:1])
    out = tmp_path / "results"
    out.mkdir()
    (tmp_path / "elsewhere.csv").write_text("mine\n")
    name = {"clean folder": "clean", "report file": "report.html", "split link": "split.csv"}.get(
        theirs, ".curate-current"
    )
    if theirs in ("clean folder", "current folder"):
        _photos(out / name, PHOTOS[1:2])
    elif theirs == "report file":
        (out / name).write_text("<p>my notes</p>")
    else:
        (out / name).symlink_to(tmp_path / "elsewhere.csv")
    before = _tree(tmp_path)
    result = _cli(folder, "--out", out, "--export", "links", "--quiet")
    assert result.returncode == 2
    _one_error_line(result, name, "not made by curate")
    assert _tree(tmp_path) == before


@pytest.fixture(scope="module")
def rerun(tmp_path_factory):
    """One flat folder holding two copies of one photo, curated twice into the same DIR."""
    base = tmp_path_factory.mktemp("rerun")
    folder = _photos(base / "photos", PHOTOS[:1])
    shutil.copy(folder / PHOTOS[0], folder / "copy.jpg")
    before = _tree(folder)
    out = base / "results"
    first = _cli(folder, "--out", out, "--export", "copies", "--quiet")
    first_clean = sorted(p.relative_to(out / "clean").as_posix() for p in (out / "clean").rglob("*.jpg"))
    second = _cli(folder, "--out", out, "--threshold", "0.99", "--quiet")
    return folder, before, out, first, first_clean, second


@pytest.mark.slow
def test_export_copies_then_a_rerun_replace_the_whole_set(rerun):
    folder, before, out, first, first_clean, second = rerun
    assert first.returncode == 0, first.stderr
    assert first_clean == ["train/copy.jpg"]  # the kept copy (same pixels, shorter name), in train
    assert second.returncode == 0, second.stderr
    assert not os.path.lexists(out / "clean")  # the earlier export went with the earlier run
    assert json.loads((out / "findings.json").read_text(encoding="utf-8"))["threshold"] == 0.99
    assert len([p for p in os.listdir(out) if p.startswith(".curate-run-")]) == 1
    assert _tree(folder) == before


@pytest.mark.slow
def test_one_group_flat_folder_completes_and_says_why_it_was_not_split(rerun):
    # Two copies of one photo, no train/ or test/: GroupShuffleSplit raised here before.
    _, _, out, first, _, _ = rerun
    assert first.returncode == 0, first.stderr
    saved = json.loads((out / "findings.json").read_text(encoding="utf-8"))
    assert sorted(map(sorted, saved["near_groups"])) == [sorted([PHOTOS[0], "copy.jpg"])]
    assert "one group" in saved["split_note"]
    with open(out / "split.csv", encoding="utf-8", newline="") as f:
        assert {row["proposed_split"] for row in csv.DictReader(f)} == {"train"}


def test_split_of_one_file_or_none_never_raises():
    assert _propose_split(np.array([-1]), [""]) == (["train"], _propose_split(np.array([-1]), [""])[1])
    assert "one readable file" in _propose_split(np.array([-1]), [""])[1]
    assert _propose_split(np.array([], dtype=np.int64), [])[0] == []
    proposed, note = _propose_split(np.array([0, 0, 0]), ["train", "test", "train"])
    assert proposed == ["train"] * 3 and note == ""  # split folders: the group moves to its majority


KILL_SCRIPT = """
import os, sys
import embedkit.report
embedkit.report.write_report = lambda *a, **k: os._exit(9)  # killed while writing the report
from embedkit.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_a_run_killed_while_writing_leaves_the_previous_set(rerun, tmp_path):
    folder, before, out, _, _, second = rerun
    assert second.returncode == 0
    previous = _outputs(out)
    script = tmp_path / "killed.py"
    script.write_text(KILL_SCRIPT, encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            str(script),
            "curate",
            str(folder),
            "--out",
            str(out),
            "--quiet",
            "--threshold",
            "0.5",
        ],
        env=ENV,
        capture_output=True,
        timeout=600,
    )
    assert done.returncode == 9, done.stderr
    assert _outputs(out) == previous  # the new findings.json never sits beside the old report
    assert _tree(folder) == before


@pytest.mark.slow
def test_ctrl_c_exits_130_with_one_line_and_keeps_earlier_results(rerun):
    if not Path("/proc/self/maps").exists():
        pytest.skip("needs /proc to see when the run has started")
    folder, before, out, _, _, _ = rerun
    previous = _outputs(out)
    run = subprocess.Popen(
        [sys.executable, "-m", "embedkit", "curate", str(folder), "--out", str(out), "--quiet"],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300
    while run.poll() is None and time.monotonic() < deadline:
        with open(f"/proc/{run.pid}/maps", encoding="utf-8", errors="replace") as maps:
            if "libtorch" in maps.read():  # the command's own code is running: interrupt it
                break
        time.sleep(0.01)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=300)
    if run.returncode == 0:
        pytest.skip("the run finished before the interrupt arrived")
    assert run.returncode == 130
    _one_error_line(subprocess.CompletedProcess([], 130, b"", err), "interrupted")
    assert _outputs(out) == previous and _tree(folder) == before


# --------------------------------------------------------------------------- a hostile folder

BIDI_NAME = "photo\u202egpj.exe.jpg"  # shows as "photoexe.jpg" reversed: an RLO spoof
UNDECODABLE = b"caf\xe9.jpg"  # Latin-1 bytes, not UTF-8
FORMULA = "=HYPERLINK(1).jpg"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A folder with what users' folders hold, curated once; victims beside it that nothing may touch."""
    base = tmp_path_factory.mktemp("hostile")
    folder = _photos(base / "photos", PHOTOS[:3])
    (folder / "sub").mkdir()
    shutil.copy(folder / PHOTOS[2], folder / "sub" / "c.jpg")
    os.symlink("sub", folder / "alias")  # a folder link: its files must count once
    os.symlink(PHOTOS[0], folder / "a-link.jpg")  # a second name of a file
    os.mkfifo(folder / "pipe.jpg")  # blocked forever when opened
    os.symlink("/dev/zero", folder / "zero.jpg")  # never ends when read
    with open(folder / "huge.jpg", "wb") as f:  # 8 GB of nothing, sparse: never read through
        f.truncate(8 << 30)
    os.symlink("loop.jpg", folder / "loop.jpg")
    os.symlink("nowhere.jpg", folder / "gone.jpg")
    shutil.copy(folder / PHOTOS[1], folder / BIDI_NAME)
    shutil.copy(folder / PHOTOS[1], os.path.join(os.fsencode(folder), UNDECODABLE))
    shutil.copy(folder / PHOTOS[2], folder / FORMULA)
    Image.fromarray(np.arange(96 * 96, dtype=np.uint16).reshape(96, 96) * 7).save(folder / "scan16.png")
    Image.open(folder / PHOTOS[2]).convert("RGB").save(folder / "phone.avif")
    (folder / "phone.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))  # no HEIC codec here
    Image.new("RGB", (4000, 120), (90, 140, 200)).save(folder / "panorama.png")
    broken_exif = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff"  # Pillow warns as it reads it
    Image.open(folder / PHOTOS[0]).save(folder / "exif.jpg", exif=broken_exif)

    out = base / "results"
    victim = base / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    (base / "victim_dir").mkdir()
    (base / "victim_dir" / "keep.txt").write_text("precious", encoding="utf-8")

    before = _tree(folder)
    outside = _tree(base / "victim_dir"), victim.read_bytes()
    result = _cli(folder, "--out", out, "--export", "links", "--quiet", timeout=300)
    findings = (
        json.loads((out / "findings.json").read_text(encoding="utf-8")) if result.returncode == 0 else {}
    )
    return base, folder, out, before, outside, result, findings


def _reason(findings, path):
    return {u["path"]: u["reason"] for u in findings["unreadable"]}.get(path, "")


@pytest.mark.slow
def test_hostile_folder_completes_quietly_and_is_unchanged(hostile):
    base, folder, out, before, outside, result, findings = hostile
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"" and result.stderr == b""  # --quiet: no bars, no "Corrupt EXIF" warning
    assert _tree(folder) == before


@pytest.mark.slow
def test_links_in_the_output_folder_are_refused_and_never_written_through(hostile):
    base, folder, out, before, outside, result, findings = hostile
    assert findings["backbone"] and (out / "split.csv").read_text(encoding="utf-8").startswith("path,")
    assert (out / "report.html").is_file() and (out / "clean" / "train").is_dir()
    # A DIR whose output names are links to victims (planted by someone else): refused, untouched.
    trap = base / "trap"
    trap.mkdir()
    os.symlink(base / "victim.txt", trap / "findings.json")
    os.symlink(base / "victim.txt", trap / "split.csv")
    os.symlink(base / "victim_dir", trap / "clean")
    os.symlink(folder, trap / "report.html")
    links = _tree(trap)
    refused = _cli(folder, "--out", trap, "--export", "links", "--quiet")
    assert refused.returncode == 2
    _one_error_line(refused, "not made by curate")
    assert _tree(trap) == links
    assert (_tree(base / "victim_dir"), (base / "victim.txt").read_bytes()) == outside
    assert _tree(folder) == before


@pytest.mark.slow
def test_pipes_devices_and_big_non_images_are_refused_without_reading(hostile):
    *_, result, findings = hostile
    assert "named pipe" in _reason(findings, "pipe.jpg")
    assert "device" in _reason(findings, "zero.jpg")
    assert "not an image" in _reason(findings, "huge.jpg")


@pytest.mark.slow
def test_link_loops_are_loops_and_dangling_links_dangling(hostile):
    *_, findings = hostile
    assert "loop" in _reason(findings, "loop.jpg") and "dangling" not in _reason(findings, "loop.jpg")
    assert "dangling" in _reason(findings, "gone.jpg")


@pytest.mark.slow
def test_a_folder_link_never_makes_a_file_count_twice(hostile):
    *_, findings = hostile
    listed = {p for g in findings["near_groups"] for p in g} | set(findings["keep"])
    assert "sub/c.jpg" in listed and not any(p.startswith("alias/") for p in listed)
    assert "alias" in {s["path"] for s in findings["skipped"]}
    # a link to a file is a name of its own: an exact copy, as the lessons treat it
    assert any({PHOTOS[0], "a-link.jpg"} <= set(g) for g in findings["exact_groups"])


@pytest.mark.slow
def test_odd_names_are_written_with_visible_escapes(hostile):
    base, folder, out, *_ = hostile
    findings = hostile[-1]
    names = set(findings["keep"]) | {p for g in findings["near_groups"] for p in g}
    assert "caf\\xe9.jpg" in names and "photo\\u202egpj.exe.jpg" in names
    page = (out / "report.html").read_text(encoding="utf-8")  # valid UTF-8 throughout
    assert "\u202e" not in page and "photo\\u202egpj.exe.jpg" in page
    assert printable_name("a\u2066b\u200fc\nd") == "a\\u2066b\\u200fc\\x0ad"


@pytest.mark.slow
def test_split_csv_cells_cannot_start_a_formula(hostile):
    out = hostile[2]
    with open(out / "split.csv", encoding="utf-8", newline="") as f:
        cells = [cell for row in csv.reader(f) for cell in row]
    assert "'" + FORMULA in cells
    assert not any(cell[:1] in ("=", "+", "-", "@", "\t", "\r") for cell in cells)


@pytest.mark.slow
def test_avif_heic_16_bit_and_panorama_files_are_used_or_reported(hostile):
    *_, findings = hostile
    readable = set(findings["keep"]) | {p for g in findings["near_groups"] for p in g}
    from PIL import features

    if features.check("avif"):
        assert "phone.avif" in readable, _reason(findings, "phone.avif")
    else:
        assert "phone.avif" in {u["path"] for u in findings["unreadable"]}  # reported, not ignored
    assert "scan16.png" in readable and "panorama.png" in readable, findings["unreadable"]
    assert "phone.heic" in readable or "HEIC" in _reason(findings, "phone.heic")  # never ignored


# --------------------------------------------------------------------------- broken files, decoded once


@pytest.mark.slow
def test_broken_files_are_named_with_their_reason_and_the_rest_is_curated(tmp_path):
    folder = _photos(tmp_path / "photos")
    data = (folder / PHOTOS[0]).read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "bomb.png").write_bytes(bomb_png(30_000, 30_000))  # 900 Mpx in ~110 kB
    os.mkfifo(folder / "pipe.jpg")
    Image.new("RGB", (6000, 20), (90, 140, 200)).save(folder / "strip.png")  # decodes; no network input
    # a 12-megapixel copy: hashed at full size, embedded from the same decode, reduced
    Image.open(folder / PHOTOS[0]).resize((4032, 3024), Image.Resampling.BICUBIC).save(
        folder / "big.jpg", quality=90
    )
    before = _tree(folder)
    out = tmp_path / "out"
    result = _cli(folder, "--out", out, timeout=300)
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stderr and b"5 unreadable" in result.stdout
    findings = json.loads((out / "findings.json").read_text(encoding="utf-8"))
    assert _reason(findings, "truncated.jpg").startswith("truncated JPEG file")
    assert _reason(findings, "empty.jpg") == "empty file (0 bytes)"
    assert "decompression bomb" in _reason(findings, "bomb.png")
    assert "named pipe" in _reason(findings, "pipe.jpg")
    assert _reason(findings, "strip.png").startswith("extreme aspect ratio: 6000x20")
    assert any({PHOTOS[0], "big.jpg"} <= set(g) for g in findings["near_groups"]), findings["near_groups"]
    assert "big.jpg" in findings["keep"] and PHOTOS[0] not in findings["keep"]  # the most pixels
    assert _tree(folder) == before


# --------------------------------------------------------------------------- unreadable subfolder


@pytest.mark.slow
def test_a_folder_that_cannot_be_entered_is_listed_and_the_run_goes_on(tmp_path):
    # Root reads every folder, so the command runs without the two capabilities that let
    # it (setpriv drops them from the bounding set): permissions then apply as to any user.
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run the command without permission overrides")
    folder = _photos(tmp_path / "photos", PHOTOS[:2])
    _photos(folder / "locked", PHOTOS[2:3])
    _photos(folder / "peek", PHOTOS[3:4])
    (folder / "locked").chmod(0o000)  # cannot be listed
    (folder / "peek").chmod(0o444)  # can be listed, not entered
    try:
        before = _tree(folder)
        command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", sys.executable]
        probe = subprocess.run([*command, "-c", f"import os; os.listdir({str(folder / 'locked')!r})"])
        if probe.returncode == 0:
            pytest.skip("setpriv could not drop the permission overrides here")
        result = subprocess.run(
            [*command, "-m", "embedkit", "curate", str(folder), "--out", str(tmp_path / "out"), "--quiet"],
            env=ENV,
            capture_output=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr
        findings = json.loads((tmp_path / "out" / "findings.json").read_text(encoding="utf-8"))
        assert "folder cannot be read" in _reason(findings, "locked")
        assert "not entered" in _reason(findings, "peek")
        assert findings["files"] == 2 + 2  # the two photos and the two folders it could not enter
        assert _tree(folder) == before
    finally:
        (folder / "locked").chmod(0o755)
        (folder / "peek").chmod(0o755)


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "args, words",
    [
        (["--backbone", "resnet9000"], ["unknown --backbone", "efficientnet_lite0"]),
        (["--threshold", "1.5"], ["--threshold"]),
        (["--threshold", "nan"], ["--threshold"]),
        (["--out", "{file}/results"], ["cannot write to output folder"]),
    ],
)
@pytest.mark.slow
def test_bad_arguments_fail_first_with_one_line(tmp_path, args, words):
    folder = _photos(tmp_path / "photos", PHOTOS[:1])
    (tmp_path / "a-file").write_text("x")
    args = [a.replace("{file}", str(tmp_path / "a-file")) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    before = _tree(tmp_path)
    result = _cli(folder, *args)
    assert result.returncode == 2
    _one_error_line(result, *words)
    assert _tree(tmp_path) == before  # nothing written, not even an empty DIR


# --------------------------------------------------------------------------- memory


def test_16_bit_images_convert_exactly(tmp_path):
    values = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "scan.png")
    got = np.asarray(load_rgb(tmp_path / "scan.png"))
    expected = np.rint(values / 257.0).astype(np.uint8)
    assert (got[..., 0] == expected).all() and (got[..., 1] == expected).all()


# --------------------------------------------------------------------------- --threshold auto


@pytest.mark.slow
def test_threshold_auto_is_measured_on_the_folder_and_recorded(manifest, tmp_path):
    """On the bundled training photos alone, the threshold measured on planted copies lands near
    the one stored for the network (measured on the whole bundled set with its ground truth)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    originals = manifest.query("split == 'train' and transformation == 'original'")
    for file in originals["file"]:
        shutil.copy(file, folder / Path(file).name)
    out = tmp_path / "out"
    done = _cli(folder, "--out", out, "--threshold", "auto", "--quiet")
    assert done.returncode == 0, done.stderr.decode()
    findings = json.loads((out / "findings.json").read_text(encoding="utf-8"))
    source = findings["threshold_source"]
    assert source["kind"] == "calibrated on this folder"
    assert source["threshold"] == pytest.approx(findings["threshold"], abs=1e-3)
    assert source["n_photos"] >= 8 and len(source["edits"]) >= 5
    stored = json.loads((REPO / "notebooks/embedkit/thresholds.json").read_text())["efficientnet_lite0"]
    assert abs(findings["threshold"] - stored["threshold"]) <= 0.05
    assert "calibrated on this folder" in (out / "report.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_threshold_auto_on_too_few_photos_falls_back_to_the_stored_one_and_says_why(tmp_path):
    folder = _photos(tmp_path / "photos")
    out = tmp_path / "out"
    done = _cli(folder, "--out", out, "--threshold", "auto", "--quiet")
    assert done.returncode == 0, done.stderr.decode()
    findings = json.loads((out / "findings.json").read_text(encoding="utf-8"))
    source = findings["threshold_source"]
    assert source["kind"].startswith("stored default") and "photos" in source["calibration_error"]
    stored = json.loads((REPO / "notebooks/embedkit/thresholds.json").read_text())["efficientnet_lite0"]
    assert findings["threshold"] == pytest.approx(stored["threshold"])


@pytest.mark.slow
def test_a_given_or_stored_threshold_says_where_it_came_from(tmp_path):
    folder = _photos(tmp_path / "photos")
    cases = (((), "stored, measured on the course's bundled data"), (("--threshold", "0.8"), "given"))
    for args, kind in cases:
        out = tmp_path / f"out{len(args)}"
        assert _cli(folder, "--out", out, "--quiet", *args).returncode == 0
        findings = json.loads((out / "findings.json").read_text(encoding="utf-8"))
        assert findings["threshold_source"]["kind"] == kind
    done = _cli(folder, "--out", tmp_path / "bad", "--threshold", "half")
    assert done.returncode == 2 and b"auto" in done.stderr


def test_a_network_without_a_measured_threshold_measures_one_by_default():
    from types import SimpleNamespace

    from embedkit.backbones import Calibration
    from embedkit.curate import _check_threshold

    unmeasured = SimpleNamespace(
        name="resnet18",
        near_duplicate_threshold=0.9,
        calibration=Calibration(0.9, measured=False, note="NOT measured"),
    )
    measured = SimpleNamespace(
        name="lite", near_duplicate_threshold=0.59, calibration=Calibration(0.59, measured=True, note="rule")
    )
    assert _check_threshold(unmeasured, None) is None  # None: measure it on the folder
    assert _check_threshold(measured, None) == 0.59
    assert _check_threshold(unmeasured, 0.7) == 0.7 and _check_threshold(measured, "auto") is None
    with pytest.raises(ValueError, match="auto"):
        _check_threshold(measured, "high")
