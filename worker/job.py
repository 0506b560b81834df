"""One compile: check the job, materialise its root, run the compiler, collect the outputs.

The root mirrors the client's file system: the client's /p/src/a.c is ROOT/p/src/a.c, hardlinked
from the blob store.  Paths are validated before they are joined (see request.py), symlinks from
the client may only resolve inside the root, and outputs may only land inside it, so a job cannot
write anywhere else even without bubblewrap.  The root is removed whatever happens.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from worker import wire
from worker.blobs import DIGEST, BlobStore
from worker.compilers import Compiler
from worker.errors import Refusal, bad_request
from worker.request import JobRequest, parse_request
from worker.rewrite import (
    Rewritten,
    depfile_inputs,
    env_rooted,
    inside,
    resolve_in_root,
    rewrite_args,
    rewrite_depfile,
    scrub_env,
    strip_root,
    to_root,
)
from worker.sandbox import Limits, Sandbox
from worker.sysfiles import SystemFiles


class ParsedManifests:
    """Checked job requests by manifest digest, the most recently used few hundred.

    A manifest names one translation unit's closure; a rebuild sends it again for each compile
    of that unit, and parsing and checking its few hundred paths costs about 0.6 ms."""

    LIMIT = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[str, JobRequest] = OrderedDict()

    def get(self, digest: str) -> JobRequest | None:
        with self._lock:
            found = self._items.get(digest)
            if found is not None:
                self._items.move_to_end(digest)
            return found

    def put(self, digest: str, request: JobRequest) -> None:
        with self._lock:
            self._items[digest] = request
            if len(self._items) > self.LIMIT:
                self._items.popitem(last=False)


@dataclass
class Engine:
    """Everything a job needs from the worker, built once at start-up."""

    compilers: dict[str, Compiler]
    blobs: BlobStore
    system: SystemFiles
    sandbox: Sandbox
    limits: Limits
    jobs_dir: str
    search_path: str
    parsed: ParsedManifests = field(default_factory=ParsedManifests)


@dataclass
class Outcome:
    """A finished job: the result frame plus what the metrics want to know."""

    body: bytes
    exit: int
    compile_seconds: float
    limit: str | None


def sweep(jobs_dir: str) -> int:
    """Remove job folders a crashed run left behind; returns how many."""
    os.makedirs(jobs_dir, exist_ok=True)
    stale = os.listdir(jobs_dir)
    for name in stale:
        shutil.rmtree(os.path.join(jobs_dir, name), ignore_errors=True)
    return len(stale)


def _compiler(engine: Engine, req: JobRequest) -> Compiler:
    """The allowlisted compiler the job names, if it is the same version and target."""
    compiler = engine.compilers.get(req.compiler_name)
    if compiler is None:
        raise Refusal(404, wire.UNKNOWN_COMPILER, name=req.compiler_name)
    if (req.compiler_version, req.compiler_target) != (compiler.version, compiler.target):
        raise Refusal(
            409,
            wire.COMPILER_MISMATCH,
            name=compiler.name,
            version=compiler.version,
            target=compiler.target,
        )
    return compiler


def _check_inputs(engine: Engine, req: JobRequest, sent: dict[str, bytes]) -> None:
    """Store the blobs that came with the job; 409 for those still missing or mismatching."""
    for digest, data in sent.items():
        engine.blobs.add(digest, data)
    missing = engine.blobs.missing({d for _, d in req.files} - set(sent))
    if missing:
        raise Refusal(409, wire.MISSING_BLOBS, missing=missing)
    for path, digest in req.system_files:
        if not engine.system.allowed(path):
            raise bad_request(f"system file {path} is outside the system folders")
        if engine.system.digest(path) != digest:
            raise Refusal(409, wire.SYSTEM_HEADER_MISMATCH, path=path)


def _check_absent(engine: Engine, req: JobRequest, rooted: list[str]) -> None:
    """409 when we have a system header the client probed and lacks (``__has_include``, a
    search that went on to the next folder): the compile would take another branch here.
    Folders the arguments moved into the root (``--sysroot``) hold only what the job sent."""
    prefixes = tuple(r.rstrip("/") + "/" for r in rooted)
    for path in req.system_absent:
        if not engine.system.allowed(path):
            raise bad_request(f"system absent entry {path} is outside the system folders")
        if path not in rooted and not path.startswith(prefixes) and os.path.isfile(path):
            raise Refusal(409, wire.SYSTEM_HEADER_MISMATCH, path=path)


class Root:
    """Builds the job root, refusing anything that would resolve outside it."""

    def __init__(self, root: str, careful: bool) -> None:
        self.root = root
        self.careful = careful  # the client sent symlinks: check where each parent resolves
        self._made: set[str] = {root}

    def _check_resolves_inside(self, path: str) -> None:
        if self.careful and not inside(self.root, os.path.realpath(path)):
            raise bad_request(f"{path[len(self.root) :]} resolves outside the job root")

    def mkdirs(self, path: str) -> None:
        """Create a folder and its parents (once per job), through in-root symlinks only."""
        if path in self._made:
            return
        if not inside(self.root, path):
            raise bad_request(f"{path} is outside the job root")
        self.mkdirs(os.path.dirname(path))
        self._check_resolves_inside(os.path.dirname(path))
        try:
            os.mkdir(path)
        except FileExistsError:
            if _dangling_link(path):
                # A client symlink to a folder that nothing else names (Bazel's execroot links
                # each top-level package to the workspace): make the folder where it points.
                target = os.path.realpath(path)
                self._check_resolves_inside(path)
                self.mkdirs(target)
            if not os.path.isdir(path):
                raise bad_request(f"{path[len(self.root) :]} is both a file and a folder") from None
        self._made.add(path)

    def symlink(self, link: str, target: str) -> None:
        """Recreate a client symlink; an absolute target is pointed at the same path in the root."""
        mapped = to_root(self.root, link)
        parent = os.path.dirname(mapped)
        self.mkdirs(parent)
        if target.startswith("/"):
            target = os.path.relpath(to_root(self.root, os.path.normpath(target)), parent)
        try:
            os.symlink(target, mapped)
        except FileExistsError:
            raise bad_request(f"symlink {link} collides with another entry") from None
        self._check_resolves_inside(mapped)

    def hardlink(self, source: str, path: str) -> None:
        """Place one input file; copies when the blob has too many links already."""
        dest = to_root(self.root, path)
        self.mkdirs(os.path.dirname(dest))
        self._check_resolves_inside(os.path.dirname(dest))
        try:
            self._link(source, dest)
        except FileExistsError:
            if not _dangling_link(dest):
                raise bad_request(f"file {path} is listed twice or collides") from None
            # The file as opened is a client symlink (Bazel's sandbox links each input into its
            # execroot): its content belongs where the link leads, inside the root.
            dest = os.path.realpath(dest)
            if not inside(self.root, dest):
                raise bad_request(f"file {path} resolves outside the job root") from None
            self.mkdirs(os.path.dirname(dest))
            try:
                self._link(source, dest)
            except FileExistsError:
                raise bad_request(f"file {path} is listed twice or collides") from None

    @staticmethod
    def _link(source: str, dest: str) -> None:
        """Hardlink, or copy when the blob has as many links as the file system allows."""
        try:
            os.link(source, dest)
        except OSError as e:
            if e.errno != errno.EMLINK:
                raise
            shutil.copyfile(source, dest)


def _dangling_link(path: str) -> bool:
    """A client symlink whose target the job root does not hold yet (Bazel's execroot)."""
    return os.path.islink(path) and not os.path.exists(path)


def _materialise(engine: Engine, req: JobRequest, root: Root, rooted: list[str]) -> None:
    """Symlinks first (files may be reached through them), then folders and files.

    System files stay where they are (their digests matched the worker's own copies); only those
    under a folder the arguments moved into the root (``-I/usr/include/foo``, ``--sysroot``) are
    linked there.  Linking all of them cost a few hundred file system operations per job.
    """
    for link, target in req.symlinks:
        root.symlink(link, target)
    for link, _ in req.symlinks:  # a later link may have changed where an earlier one leads
        root._check_resolves_inside(to_root(root.root, link))
    for d in [*req.dirs, req.cwd]:
        root.mkdirs(to_root(root.root, d))
    missing = []
    for path, digest in req.files:
        try:
            root.hardlink(engine.blobs.path(digest), path)
        except FileNotFoundError:  # evicted since the check: the client sends it again
            missing.append(digest)
    if missing:
        raise Refusal(409, wire.MISSING_BLOBS, missing=sorted(set(missing)))
    prefixes = tuple(r.rstrip("/") + "/" for r in rooted)
    for path, _ in req.system_files:
        if path not in rooted and not path.startswith(prefixes):
            continue
        dest = to_root(root.root, path)
        root.mkdirs(os.path.dirname(dest))
        if not os.path.lexists(dest):
            os.symlink(path, dest)


def _prepare_outputs(root: Root, paths: list[str]) -> None:
    """Output folders exist, resolve inside the root, and no output overwrites an input."""
    for mapped in paths:
        root.mkdirs(os.path.dirname(mapped))
        if not inside(root.root, os.path.realpath(os.path.dirname(mapped))):
            raise bad_request(f"output {mapped[len(root.root) :]} resolves outside the job root")
        if os.path.lexists(mapped):
            raise bad_request(f"output {mapped[len(root.root) :]} would overwrite an input")


def _read_output(root: str, mapped: str) -> bytes | None:
    """An output's bytes, or None if the compiler did not write it; never through a symlink."""
    if not inside(root, os.path.realpath(os.path.dirname(mapped))):
        return None
    try:
        fd = os.open(mapped, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        return f.read()


def _input_list(rewritten: Rewritten, depfiles: set[str], tmpdir: str) -> set[str]:
    """The dependency files that will list every file the compiler reads: the job's own with
    -MD, else one the job is given in ``tmpdir`` (the object does not change); none with -MMD,
    whose list leaves system headers out, or for a preprocessed input, which reads none."""
    if rewritten.user_deps_only or rewritten.preprocessed:
        return set()
    if rewritten.deps or rewritten.depfile:
        return depfiles
    ours = os.path.join(tmpdir, "inputs.d")
    rewritten.argv += ["-MD", "-MF", ours]
    return {ours}


def _refuse_unlisted(req: JobRequest, root: str, cwd: str, listings: list[bytes]) -> None:
    """409 unlisted_input when the compile read a file the job did not list (the client then
    compiles it itself).

    The job root holds only what the client sent, so a file read from outside it is the
    worker's own: fine for a system header the client listed (its digest was checked), but any
    other means the client's include analysis missed it and the object may differ from a
    local compile.
    """
    for listing in listings:
        path = _unlisted_input(req, root, cwd, listing)
        if path is not None:
            raise Refusal(409, wire.UNLISTED_INPUT, path=path)


def _unlisted_input(req: JobRequest, root: str, cwd: str, listing: bytes) -> str | None:
    """The first file a dependency list names that is neither in the root nor verified."""
    verified, in_root = req.verified, root + "/"
    for name in depfile_inputs(listing):
        if name in verified or (name.startswith(in_root) and "/." not in name):
            continue  # the usual cases, without the cost of normalising
        path = os.path.normpath(os.path.join(cwd, name))
        if not inside(root, path) and path not in verified:
            return path
    return None


def _depfiles(rewritten: Rewritten, outputs: dict[str, str]) -> set[str]:
    """Which outputs are dependency files: the -MF value, else '.d' outputs when -MD is given."""
    if rewritten.depfile:
        return {rewritten.depfile}
    if rewritten.deps:
        return {m for m in outputs.values() if m.endswith(".d")}
    return set()


def expand_manifest(engine: Engine, header: dict, sent: dict[str, bytes]) -> dict:
    """The job's fields, read from its manifest blob when the header names one by digest.

    A rebuild sends the same closure for each translation unit again; as a blob, the manifest
    (args, cwd, file list with digests, ...) travels once per worker like any input file, and the
    job itself is a few dozen bytes.  A header without "manifest" carries its fields inline.
    """
    digest = header.get("manifest")
    if digest is None:
        return header
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise bad_request("'manifest' must be a sha256 hex digest")
    if digest in sent:
        engine.blobs.add(digest, sent[digest])
    try:
        if engine.blobs.missing({digest}):
            raise FileNotFoundError(digest)
        with open(engine.blobs.path(digest), "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise Refusal(409, wire.MISSING_BLOBS, missing=[digest]) from None
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise bad_request(f"manifest {digest} is not JSON: {e}") from None
    if not isinstance(manifest, dict) or "manifest" in manifest:
        raise bad_request(f"manifest {digest} is not a job header object")
    return manifest


def _request(engine: Engine, header: dict, sent: dict[str, bytes]) -> JobRequest:
    """The job's checked fields; a manifest seen recently is not parsed again."""
    digest = header.get("manifest")
    if isinstance(digest, str):
        found = engine.parsed.get(digest)
        if found is not None:
            if digest in sent:
                engine.blobs.add(digest, sent[digest])
            return found
    req = parse_request(expand_manifest(engine, header, sent))
    if isinstance(digest, str):
        engine.parsed.put(digest, req)
    return req


def run_job(engine: Engine, header: dict, sent: dict[str, bytes], started: float) -> Outcome:
    """Do one compile end to end and return the 200 answer (or raise a Refusal)."""
    # Wall clock once the whole job is in: clients compare it with their own to measure latency.
    received_at = time.time()
    req = _request(engine, header, sent)
    compiler = _compiler(engine, req)
    _check_inputs(engine, req, sent)
    jobdir = tempfile.mkdtemp(dir=engine.jobs_dir)
    try:
        root_path = os.path.join(jobdir, "r")
        tmpdir = os.path.join(jobdir, "t")
        os.mkdir(root_path)
        os.mkdir(tmpdir)
        rewritten = rewrite_args(req.args, root_path, req.cwd)
        env = scrub_env(req.env, root_path, engine.search_path, tmpdir)
        outputs = {o: resolve_in_root(root_path, req.cwd, o, "output") for o in req.outputs}
        root = Root(root_path, careful=bool(req.symlinks))
        rooted = rewritten.rooted + env_rooted(req.env)
        _check_absent(engine, req, rooted)
        _materialise(engine, req, root, rooted)
        written = sorted(set(rewritten.written) | set(outputs.values()))
        _prepare_outputs(root, written)
        depfiles = _depfiles(rewritten, outputs)
        listings = _input_list(rewritten, depfiles, tmpdir)
        setup_done = time.monotonic()
        cwd = to_root(root_path, req.cwd)
        argv = [compiler.path, *rewritten.argv]
        run = engine.sandbox.run(argv, jobdir, cwd, env, engine.limits, written)
        collect_start = time.monotonic()
        files, listed = [], []
        for path, mapped in outputs.items():
            data = _read_output(root_path, mapped)
            if data is None:
                continue
            if mapped in listings:
                listed.append(data)
            if mapped in depfiles:
                data = rewrite_depfile(data, root_path, compiler.family)
            files.append((path, data))
        listed += [_read_output(tmpdir, ours) or b"" for ours in listings - depfiles]
        if run.exit == 0:  # a failed compile's errors are answered as they are
            _refuse_unlisted(req, root_path, cwd, listed)
        stdout, stderr = strip_root(run.stdout, root_path), strip_root(run.stderr, root_path)
        now = time.monotonic()
        times = {
            "setup": round(setup_done - started, 6),
            "compile": round(run.seconds, 6),
            "collect": round(now - collect_start, 6),
            "total": round(now - started, 6),
            "received_at": round(received_at, 6),
        }
        extra: dict[str, object] = {"times": times, "sandbox": engine.sandbox.kind}
        if run.limit:
            extra["limit_exceeded"] = run.limit
        body = wire.encode_result(run.exit, stdout, stderr, files, extra=extra)
        return Outcome(body, run.exit, run.seconds, run.limit)
    finally:
        shutil.rmtree(jobdir, ignore_errors=True)
