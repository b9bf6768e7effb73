"""Every subcommand fed bad files and arguments: one line on stderr, exit 2, inputs intact.

Most cases call ``edgernn.cli.main`` in-process (fast); a few run the real
``python -m edgernn`` to show the same from a shell (no traceback, status 2).
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import edgernn
from edgernn import cli
from edgernn.format.boundedjson import canonical
from tests.helpers import need_module


def _r(rng, *s):
    return (rng.standard_normal(s) * 0.4).astype(np.float32)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("clierr")
    rng = np.random.default_rng(3)
    gru = lambda: edgernn.GRU(_r(rng, 18, 3), _r(rng, 18, 6))  # noqa: E731
    edgernn.Model([gru(), edgernn.Dense(_r(rng, 2, 6))]).save(d / "m.ernn")
    edgernn.Model([edgernn.Bidirectional(gru(), gru())]).save(d / "bi.ernn")
    edgernn.Model([edgernn.Embedding(_r(rng, 5, 3)), gru()]).save(d / "tok.ernn")
    xs = _r(rng, 20, 3)
    np.save(d / "xs.npy", xs)
    xs[3, 1], xs[7, 0] = np.nan, np.inf
    np.save(d / "nan.npy", xs)
    np.save(d / "empty.npy", np.zeros((0, 3), np.float32))
    np.save(d / "wide.npy", np.zeros((4, 7), np.float32))
    np.save(d / "flat.npy", np.zeros(4, np.float32))
    np.save(d / "cube.npy", np.zeros((2, 4, 3), np.float32))
    np.save(d / "ints.npy", np.zeros((4, 3), np.int32))
    np.save(d / "ids.npy", np.array([0, 4, 9]))
    np.save(d / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.savez(d / "x.npz", a=xs)
    (d / "emptyfile").write_bytes(b"")
    (d / "text").write_text("hello\n")
    (d / "random").write_bytes(np.random.default_rng(0).bytes(3000))
    raw = (d / "m.ernn").read_bytes()
    (d / "trunc.ernn").write_bytes(raw[:len(raw) // 2])
    with zipfile.ZipFile(d / "m.ernn") as zin, zipfile.ZipFile(d / "odd.ernn", "w") as zout:
        man = json.loads(zin.read("manifest.json"))
        man["producer"] = "someone"  # edited, and re-hashed as a careless tool would
        raw = canonical(man)
        for info in zin.infolist():
            data = {"manifest.json": raw,
                    "manifest.sha256": hashlib.sha256(raw).hexdigest().encode() + b"\n"
                    }.get(info.filename) or zin.read(info)
            zout.writestr(info.filename, data)
    for ext in ("onnx", "tflite", "keras", "h5", "pt"):
        (d / f"g.{ext}").write_bytes(np.random.default_rng(1).bytes(2000))
        (d / f"e.{ext}").write_bytes(b"")
    from edgernn.format import archive, signing

    for name in ("a", "b"):
        priv, pub = signing.generate_key_pem()
        (d / f"{name}.key").write_bytes(priv)
        (d / f"{name}.pub").write_bytes(pub)
    got = archive.read(d / "m.ernn")
    archive.write(d / "signed.ernn", got.manifest, got.arrays, signing_key=d / "a.key")
    (d / "exists.npy").write_bytes(b"keep me")
    (d / "exists.ernn").write_bytes(b"keep me too")
    (d / "sub").mkdir()
    (d / "dir.npy").mkdir()
    return d


def _digests(d):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.iterdir()) if p.is_file()}


# (argv with {d} for the work dir, text the one line must hold)
BAD = [
    ("inspect {d}/missing.ernn", "No such file"),
    ("inspect {d}/sub", "Is a directory"),
    ("inspect {d}/emptyfile", "zip archive was expected"),
    ("inspect {d}/text", "zip archive was expected"),
    ("inspect {d}/random", "zip archive was expected"),
    ("inspect {d}/trunc.ernn", "zip archive was expected|truncated|corrupt"),
    ("inspect {d}/xs.npy", "zip archive was expected"),
    ("inspect {d}/odd.ernn", "manifest.producer: expected an object, got 'someone'"),
    ("inspect {d}/m.ernn --public-key {d}/missing.pem", "public key 'missing.pem'|missing.pem"),
    ("inspect {d}/m.ernn --public-key {d}/text", "not an Ed25519 key"),
    ("run {d}/m.ernn --input {d}/missing.npy --output {d}/o1", "No such file"),
    ("run {d}/m.ernn --input {d}/emptyfile --output {d}/o1", "not a .npy file"),
    ("run {d}/m.ernn --input {d}/text --output {d}/o1", "not a .npy file"),
    ("run {d}/m.ernn --input {d}/x.npz --output {d}/o1", "an .npz archive holding \\['a'\\]"),
    ("run {d}/m.ernn --input {d}/obj.npy --output {d}/o1", "not a readable .npy"),
    ("run {d}/m.ernn --input {d}/empty.npy --output {d}/o1", "holds no steps"),
    ("run {d}/m.ernn --input {d}/wide.npy --output {d}/o1", "shape \\(T, 3\\), got float32"),
    ("run {d}/m.ernn --input {d}/flat.npy --output {d}/o1", "shape \\(T, 3\\)"),
    ("run {d}/m.ernn --input {d}/cube.npy --output {d}/o1", "shape \\(T, 3\\)"),
    ("run {d}/m.ernn --input {d}/ints.npy --output {d}/o1", "expected a float array"),
    ("run {d}/tok.ernn --input {d}/xs.npy --output {d}/o1", "int token ids"),
    ("run {d}/tok.ernn --input {d}/ids.npy --output {d}/o1", "token ids must lie in"),
    ("run {d}/m.ernn --input {d}/xs.npy --output {d}/xs.npy", "is also an input"),
    ("run {d}/m.ernn --input {d}/xs.npy --output {d}/xs", "xs.npy: is also an input"),
    ("run {d}/m.ernn --input {d}/xs.npy --output {d}/exists.npy", "exists; pass --force"),
    ("run {d}/m.ernn --input {d}/xs.npy --output {d}/nodir/o", "does not exist"),
    ("run {d}/m.ernn --input {d}/xs.npy --output {d}/dir.npy", "is a directory"),
    ("run {d}/m.ernn --input {d}/xs.npy --output {d}/o1 --math rough", "invalid choice"),
    ("run {d}/m.ernn --input {d}/xs.npy", "required: --output"),
    ("run {d}/random --input {d}/xs.npy --output {d}/o1", "zip archive was expected"),
    ("bench {d}/m.ernn --steps 0", "--steps: expected an integer in \\[1, 100000000\\]"),
    ("bench {d}/m.ernn --steps -5", "--steps: expected an integer"),
    ("bench {d}/m.ernn --steps abc", "--steps: expected an integer"),
    ("bench {d}/m.ernn --steps 1000000000", "--steps: expected an integer"),
    ("bench {d}/m.ernn --json {d}/nodir/b.json", "does not exist"),
    ("bench {d}/bi.ernn --no-cold", "Bidirectional"),
    ("convert {d}/missing.onnx", "no such file"),
    ("convert {d}/sub", "is a directory"),
    ("convert {d}/text", "cannot tell the format"),
    ("convert {d}/g.onnx", "not an ONNX model"),
    ("convert {d}/e.onnx", "e.onnx"),
    ("convert {d}/g.tflite", "not a TFLite flatbuffer"),
    ("convert {d}/e.tflite", "not a TFLite flatbuffer"),
    ("convert {d}/g.keras", "neither a .keras zip nor an HDF5"),
    ("convert {d}/e.h5", "neither a .keras zip nor an HDF5"),
    ("convert {d}/g.pt --example-shape 1,5,3", "neither TorchScript nor a pickled module"),
    ("convert {d}/e.pt --example-shape 1,5,3", "neither TorchScript nor a pickled module"),
    ("convert {d}/g.pt", "needs --example-shape"),
    ("convert {d}/g.pt --example-shape a,b", "expected positive integers"),
    ("convert {d}/g.pt --example-shape 0,5", "expected positive integers"),
    ("convert {d}/g.onnx -o {d}/g.onnx", "is also an input"),
    ("convert {d}/m.ernn --from onnx", "is also an input"),
    ("convert {d}/g.onnx -o {d}/exists.ernn", "exists; pass --force"),
    ("convert {d}/g.onnx --from caffe", "invalid choice"),
    ("bridge --port loop:// --model {d}/m.ernn --queue 0", "--queue: expected an integer"),
    ("bridge --port loop:// --model {d}/m.ernn --duration -1", "--duration: expected a number > 0"),
    ("bridge --port loop:// --model {d}/m.ernn --duration 0", "--duration: expected a number > 0"),
    ("bridge --port loop:// --model {d}/m.ernn --duration nan", "--duration"),
    ("bridge --port loop:// --model {d}/m.ernn --baud 0", "--baud: expected an integer"),
    ("bridge --port loop:// --model {d}/m.ernn --stats-interval -1", "--stats-interval"),
    ("bridge --port loop:// --model {d}/bi.ernn --duration 1", "cannot be stepped"),
    ("bridge --port loop:// --model {d}/missing.ernn", "No such file"),
    ("bridge --port loop:// --model {d}/random", "zip archive was expected"),
    ("bridge --port foo://x --model {d}/m.ernn --duration 1", "cannot open serial port"),
    ("bridge --port loop:// --model {d}/m.ernn --json {d}/nodir/s.json", "does not exist"),
    ("bridge --model {d}/m.ernn", "required: --port"),
    ("inspect {d}/m.ernn --public-key {d}/a.pub", "not signed .* a signature is required"),
    ("inspect {d}/signed.ernn --public-key {d}/b.pub", "signed with key .*, not with the given"),
    ("run {d}/signed.ernn --input {d}/xs.npy --output {d}/o1 --public-key {d}/b.pub",
     "signed with key"),
    ("bridge --port loop:// --model {d}/m.ernn --public-key {d}/a.pub --duration 1",
     "not signed"),
    ("sign {d}/m.ernn --key {d}/missing.key -o {d}/o.ernn", "missing.key"),
    ("sign {d}/m.ernn --key {d}/a.pub -o {d}/o.ernn", "private key .*: not an Ed25519 key"),
    ("sign {d}/m.ernn --key {d}/a.key -o {d}/m.ernn", "is also an input"),
    ("sign {d}/m.ernn --key {d}/a.key -o {d}/exists.ernn", "exists; pass --force"),
    ("sign {d}/random --key {d}/a.key -o {d}/o.ernn", "zip archive was expected"),
    ("sign {d}/m.ernn --key {d}/a.key", "required: -o/--output"),
    ("keygen {d}/a", "a.key: exists; pass --force"),
    ("convert {d}/g.onnx --sign-key {d}/b.pub -o {d}/o.ernn", "private key .*: not an Ed25519"),
    ("frobnicate", "invalid choice"),
]


def _main(argv):
    try:
        return cli.main(argv)
    except SystemExit as exc:  # argparse's own errors
        return exc.code


@pytest.mark.parametrize("argv,match", BAD, ids=[b[0].replace("{d}/", "") for b in BAD])
def test_bad_input_gives_one_line_and_exit_2(work, capsys, argv, match):
    before = _digests(work)
    rc = _main(argv.format(d=work).split())
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert re.search(match, lines[0]), lines[0]
    assert _digests(work) == before  # nothing written, nothing changed, no temp files


def test_unknown_flag_prints_the_usage(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["inspect", "m.ernn", "--bogus"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.startswith("usage:") and "--bogus" in err


def test_run_writes_the_final_path_it_names_and_warns_on_nonfinite_rows(work, capsys):
    rc = cli.main(["run", str(work / "m.ernn"), "--input", str(work / "nan.npy"),
                   "--output", str(work / "out")])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert f"wrote {work / 'out.npy'}: 20 steps x 2 outputs" in out.out
    ys = np.load(work / "out.npy")
    bad_out = int((~np.isfinite(ys)).any(1).sum())
    assert "2 of 20 input rows hold NaN or Inf" in out.err
    assert f"{bad_out} of 20 output rows hold NaN or Inf" in out.err and bad_out >= 1
    assert not (work / "out").exists()
    rc = cli.main(["run", str(work / "m.ernn"), "--input", str(work / "xs.npy"),
                   "--output", str(work / "out.npy"), "--force"])
    assert rc == 0
    want = edgernn.load(work / "m.ernn").stream().run(np.load(work / "xs.npy"))
    np.testing.assert_array_equal(np.load(work / "out.npy"), want)
    assert "warning" not in capsys.readouterr().err
    (work / "out.npy").unlink()


def test_convert_failure_leaves_nothing_and_names_the_final_path(work, capsys, monkeypatch):
    torch = need_module("torch", "torch (the dev extra)")
    net = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.Tanh())
    torch.save(net, work / "lin.pt")
    assert cli.main(["convert", str(work / "lin.pt"), "--example-shape", "1,5,3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not accept an example input of shape (1, 5, 3)" in err[0]

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(edgernn.format.atomic.os, "fsync", disk_full)  # inside the real writer
    before = set(os.listdir(work))
    rc = cli.main(["convert", str(work / "lin.pt"), "--example-shape", "1,5,8",
                   "-o", str(work / "lin.ernn")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [f"edgernn: error: {work / 'lin.ernn'}: cannot write: No space "
                               f"left on device"]
    assert set(os.listdir(work)) == before  # no lin.ernn, no temporary file
    monkeypatch.undo()
    assert cli.main(["convert", str(work / "lin.pt"), "--example-shape", "1,5,8",
                     "-o", str(work / "lin.ernn")]) == 0
    assert edgernn.load(work / "lin.ernn").input_size == 8
    for p in ("lin.pt", "lin.ernn"):
        (work / p).unlink()


def test_inspect_json_is_one_parsable_document(work, capsys):
    assert cli.main(["inspect", str(work / "m.ernn"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["input_size"] == 3 and info["output_size"] == 2 and info["streamable"]
    assert [row["type"] for row in info["layers"]] == ["GRU", "Dense"], info["layers"]
    assert info["manifest_sha256"] == hashlib.sha256(
        zipfile.ZipFile(work / "m.ernn").read("manifest.json")).hexdigest()
    assert info["manifest_hash_stored"] and info["signature"] is None
    assert info["producer"] == {"name": "edgernn", "version": edgernn.__version__}


@pytest.mark.coldcache
def test_bench_reports_progress_before_each_cold_start_process(work, capsys, monkeypatch):
    from edgernn.cli import benchmark

    seen = []

    def fake_cold_start(path, cache_dir=None):  # the subprocess itself is covered elsewhere
        seen.append(capsys.readouterr().err)
        return 0.5

    monkeypatch.setattr(benchmark, "cold_start_s", fake_cold_start)
    assert cli.main(["bench", str(work / "m.ernn"), "--steps", "200"]) == 0
    assert len(seen) == 4 and "empty Numba cache" in seen[0]
    assert all("warm cache" in s for s in seen[1:])


@pytest.mark.parametrize("argv", [
    ["run", "{d}/m.ernn", "--input", "{d}/x.npz", "--output", "{d}/o"],
    ["bench", "{d}/m.ernn", "--steps", "0"],
    ["bridge", "--port", "loop://", "--model", "{d}/m.ernn", "--queue", "0"],
    ["inspect", "{d}/trunc.ernn"],
])
def test_shell_sees_one_line_and_status_2(work, argv):
    out = subprocess.run([sys.executable, "-m", "edgernn", *[a.format(d=work) for a in argv]],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def _foreign_path() -> str:
    """An int8 path of another CPU class (x86's on aarch64 and the other way round)."""
    from edgernn.kernels import tile_i8

    return next(p for p in tile_i8.PATHS
                if not tile_i8._runs_here(p, tile_i8._features()))


@pytest.mark.parametrize("forced", ["bogus", _foreign_path()])
def test_a_forced_int8_path_this_cpu_cannot_run_is_one_line_before_any_compile(
        work, tmp_path, forced):
    """``EDGERNN_INT8_PATH`` naming no path, or one of another CPU class, is refused with
    the paths this CPU runs, before the compiler sees it; a float model does not care."""
    env = dict(os.environ, EDGERNN_INT8_PATH=forced, EDGERNN_CACHE_DIR=str(tmp_path / "c"))
    out = subprocess.run([sys.executable, "-m", "edgernn", "warmup"], capture_output=True,
                         text=True, timeout=120, env=env)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert re.search(rf"EDGERNN_INT8_PATH: expected one of .*generic.*got '{forced}'",
                     out.stderr)
    out = subprocess.run([sys.executable, "-m", "edgernn", "run", str(work / "m.ernn"),
                          "--input", str(work / "xs.npy"), "--output", str(tmp_path / "y")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr


def test_keygen_sign_and_require_the_signature(work, capsys, tmp_path):
    assert cli.main(["keygen", str(tmp_path / "dev")]) == 0
    assert os.stat(tmp_path / "dev.key").st_mode & 0o777 == 0o600
    assert cli.main(["sign", str(work / "m.ernn"), "--key", str(tmp_path / "dev.key"),
                     "-o", str(tmp_path / "s.ernn")]) == 0
    capsys.readouterr()
    assert cli.main(["inspect", str(tmp_path / "s.ernn"), "--json",
                     "--public-key", str(tmp_path / "dev.pub")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["signature"]["verified"] and info["manifest_hash_stored"]
    model = edgernn.load(tmp_path / "s.ernn", require_signature=True,
                         public_key=tmp_path / "dev.pub")
    xs = np.load(work / "xs.npy")
    np.testing.assert_array_equal(model.stream().run(xs),
                                  edgernn.load(work / "m.ernn").stream().run(xs))
    assert cli.main(["run", str(tmp_path / "s.ernn"), "--input", str(work / "xs.npy"),
                     "--output", str(tmp_path / "ys"), "--public-key",
                     str(tmp_path / "dev.pub")]) == 0
    with pytest.raises(edgernn.ModelFormatError, match="not signed"):
        edgernn.load(work / "m.ernn", require_signature=True, public_key=tmp_path / "dev.pub")


def test_run_on_a_full_disk_names_the_output_file(work, capsys, monkeypatch):
    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(edgernn.format.atomic.os, "fsync", disk_full)
    rc = cli.main(["run", str(work / "m.ernn"), "--input", str(work / "xs.npy"),
                   "--output", str(work / "full.npy")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == [f"edgernn: error: {work / 'full.npy'}: cannot write: No space "
                               f"left on device"]
    assert not (work / "full.npy").exists()


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_force_never_replaces_a_device_node_or_a_fifo(work, tmp_path, capsys, kind):
    """As root, ``-o /dev/null --force`` replaced the machine's /dev/null with a file:
    only regular files are replaced. The node is made in this test's folder."""
    import stat

    node = tmp_path / f"node-{kind}.npy"
    if kind == "device":
        if os.geteuid() != 0:
            pytest.skip("making a device node needs root (the FIFO case covers the rule)")
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))   # as /dev/null
    else:
        os.mkfifo(node)
    before = os.lstat(node)
    for argv in (["run", str(work / "m.ernn"), "--input", str(work / "xs.npy"), "--output",
                  str(node), "--force"],
                 ["convert", str(work / "m.ernn"), "-o", str(node), "--force"]):
        rc = cli.main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1, err
        assert "is not a regular file" in err[0], err
    after = os.lstat(node)
    assert (after.st_mode, after.st_ino, after.st_rdev) == (before.st_mode, before.st_ino,
                                                             before.st_rdev)


def test_a_closed_pipe_ends_the_command_quietly(work):
    """``edgernn inspect m.ernn | head -1``: no 'Broken pipe' error, no traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "edgernn", "inspect", str(work / "m.ernn")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()   # the reader goes away after one line, as head -1 does
    err = proc.stderr.read().decode()
    rc = proc.wait(120)
    assert err == "" and rc in (0, 141), (rc, err)
