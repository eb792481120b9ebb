"""The Docker-in-Docker lab: its images, built here with no registry, and its nodes.

**Images.** There may be no registry (LAB.md), so every image is built from Debian:
`tuik8s/base` is a debootstrap root filesystem imported with `docker import` (its tarball is
cached, so rebuilding later layers never redoes debootstrap); `tuik8s/node` is that tree plus
a Docker engine, iptables and the project's runtime Python dependencies, installed by chroot on
the host, where apt works, and pip from wheels prepared on the host, so a node never needs
the network. The project's code is not in the image: nodes bind-mount the checkout read-only,
so a code change reaches every node on its next kubelet restart without a rebuild.
`tuik8s/busybox` is Debian's static busybox (2 MB); the sample apps and the log collector
are `docker build`s on it with `--network none`.

**Nodes.** One user-defined, *internal* docker network per cluster (`tuik8s-<cluster>`,
172.30.K.0/24: the host is its gateway .1, where the API server and the cluster DNS
listen; node N is .10+N). Internal means docker gives the nodes no default route and
drops anything leaving the subnet, so nothing in the lab reaches beyond the host. Node N runs
its own dockerd on the pod CIDR 10.(244+K).N.0/24; pods on different nodes reach each other
through routes on every node and on the host (kindnet-style), and one host rule lets that
traffic, whose addresses are outside the lab subnet, cross the bridge between nodes.

**Why not python-on-whales everywhere.** It is used for what it wraps (run, inspect, list,
stop, start, kill, remove, build, import). The docker CLI is called through an asyncio
subprocess where it has no answer: `network create --internal` (no such flag), and byte
streams between two commands (`tar | docker import`, `docker load` fed into `docker exec -i`),
since it only takes files or returns whole outputs. python-on-whales is synchronous, so it
runs in `asyncio.to_thread` (DESIGN rule 8).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import hashlib
import importlib.metadata
import ipaddress
import json
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tuik8s.dns import DNS_SERVICE_IP
from tuik8s.nodes.provider import LabStatus, LoadResult, NodeMachine, ProviderError

log = logging.getLogger(__name__)

T = TypeVar("T")
Say = Callable[[str], None]

# --- where things are -------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = REPO_ROOT / "tuik8s"
LAB_DIR = REPO_ROOT / "lab"
ENTRYPOINT = LAB_DIR / "node-entrypoint.sh"
HOST_HAS_MODULES = Path("/lib/modules").is_dir()  # nodes see it read-only, as kind's do


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tuik8s"


# --- images -------------------------------------------------------------------------------

BASE_IMAGE = "tuik8s/base"
NODE_IMAGE = "tuik8s/node"
BUSYBOX_IMAGE = "tuik8s/busybox"
APPS = ("blog", "shop", "voice")
APP_IMAGES = tuple(f"tuik8s/{app}" for app in APPS)
LOG_COLLECTOR_IMAGE = "tuik8s/log-collector"
ALL_IMAGES = (BUSYBOX_IMAGE, *APP_IMAGES, LOG_COLLECTOR_IMAGE, BASE_IMAGE, NODE_IMAGE)
# what every node gets at `lab up` (kind's "images preloaded on the node")
NODE_PRELOADED = (BUSYBOX_IMAGE, *APP_IMAGES, LOG_COLLECTOR_IMAGE)
QUICK_IMAGES = frozenset({BUSYBOX_IMAGE, *APP_IMAGES, LOG_COLLECTOR_IMAGE})  # seconds to build
PARENT = {
    NODE_IMAGE: BASE_IMAGE,
    **{image: BUSYBOX_IMAGE for image in (*APP_IMAGES, LOG_COLLECTOR_IMAGE)},
}

DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = os.environ.get("TUIK8S_DEBIAN_MIRROR", "http://deb.debian.org/debian")
BASE_PACKAGES = ("python3", "ca-certificates")
NODE_PACKAGES = ("docker.io", "iptables", "iproute2", "procps", "conntrack", "python3-venv")
NODE_VENV = "/opt/tuik8s/venv"
NODE_SRC = "/opt/tuik8s/src"
NODE_ENTRYPOINT = "/usr/local/bin/tuik8s-node-entrypoint"
NODE_LAB = "/opt/tuik8s/lab"  # the checkout's lab/ (read-only): lab/node-agent.py and friends
RECIPE_LABEL = "tuik8s.recipe"

# --- the lab network ------------------------------------------------------------------------

CLUSTER_LABEL = "tuik8s.cluster"
NODE_LABEL = "tuik8s.node"
POD_CIDR_LABEL = "tuik8s.pod-cidr"
MAX_NODES = 200
MAX_CLUSTERS = 12  # 10.244/16 .. 10.255/16
# Lab indexes handed out but whose network does not exist yet, machine-wide (see
# `DockerNodeProvider.network`); a user who is not root (and so cannot run a lab, only
# allocate its addresses) keeps them in the cache.
LAB_REGISTRY = Path("/var/lib/tuik8s/labs")
# How long a reservation holds without its network: `tuik8s up` allocates, starts the
# control plane and may build the images (minutes on a cold machine) before the network.
RESERVATION_GRACE = 3600.0

# The flags that run a full dockerd in a container on these machines (LAB.md): plain
# --privileged fails here for want of CAP_SYS_RESOURCE in the bounding set.
DIND_CAP_ADD = ("ALL",)
DIND_CAP_DROP = ("SYS_RESOURCE",)
DIND_SECURITY = ("seccomp=unconfined", "apparmor=unconfined")
DIND_DEVICE_RULES = ("a *:* rwm",)


class LabError(ProviderError):
    """A lab failure, in one line."""


@dataclass(frozen=True)
class LabNetwork:
    """The addresses of cluster number `index`'s lab: all derived, nothing to look up."""

    cluster: str
    index: int

    @property
    def name(self) -> str:
        return f"tuik8s-{self.cluster}"

    @property
    def subnet(self) -> str:
        return f"172.30.{self.index}.0/24"

    @property
    def gateway(self) -> str:
        return f"172.30.{self.index}.1"

    @property
    def dns(self) -> str:
        """Where the cluster DNS answers (`tuik8s up` runs it on the gateway): the resolver of
        the nodes and of Default-policy pods. It refuses what is not the cluster's, so
        nothing leaks; without it nothing answers here, and nothing leaks either."""
        return self.gateway

    @property
    def cluster_cidr(self) -> str:
        return f"10.{244 + self.index}.0.0/16"

    def node_ip(self, n: int) -> str:
        return f"172.30.{self.index}.{10 + n}"

    def pod_cidr(self, n: int) -> str:
        return f"10.{244 + self.index}.{n}.0/24"


def node_name(n: int) -> str:
    return f"node{n}"


def node_number(name: str) -> int | None:
    if name.startswith("node") and name[4:].isdigit():
        return int(name[4:])
    return None


# --- running things -----------------------------------------------------------------------


def _last_line(text: str | bytes | None) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


async def run(
    *cmd: str | os.PathLike[str], input: bytes | None = None, within: float | None = None,
    what: str | None = None, env: dict[str, str] | None = None, cwd: Path | None = None,
) -> str:
    """Run a command; its stdout, or `LabError` naming it with its last stderr line."""
    argv = [str(c) for c in cmd]
    what = what or " ".join(argv[:3])
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=cwd,
        )
    except FileNotFoundError:
        raise LabError(f"{argv[0]} is not installed") from None
    try:
        async with asyncio.timeout(within):
            out, err = await proc.communicate(input)
    except BaseException as e:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.shield(proc.wait())
        if isinstance(e, TimeoutError):
            raise LabError(f"{what}: no answer within {within:g}s") from None
        raise
    if proc.returncode != 0:
        reason = _last_line(err) or _last_line(out) or f"exit status {proc.returncode}"
        raise LabError(f"{what} failed: {reason}")
    return out.decode(errors="replace")


async def pipeline(
    producer: Sequence[str | os.PathLike[str]], consumer: Sequence[str | os.PathLike[str]], *, what: str,
) -> str:
    """`producer | consumer` without the bytes passing through Python; consumer's stdout."""
    read_fd, write_fd = os.pipe()
    try:
        first = await asyncio.create_subprocess_exec(
            *map(str, producer), stdin=asyncio.subprocess.DEVNULL, stdout=write_fd, stderr=asyncio.subprocess.PIPE,
        )
        second = await asyncio.create_subprocess_exec(
            *map(str, consumer), stdin=read_fd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError as e:
        raise LabError(f"{e.filename} is not installed") from None
    finally:
        os.close(read_fd)
        os.close(write_fd)
    try:
        (_, err1), (out2, err2) = await asyncio.gather(first.communicate(), second.communicate())
    except asyncio.CancelledError:
        for proc in (first, second):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        raise
    if first.returncode != 0:
        raise LabError(f"{what} failed: {_last_line(err1) or f'exit status {first.returncode}'}")
    if second.returncode != 0:
        raise LabError(f"{what} failed: {_last_line(err2) or f'exit status {second.returncode}'}")
    return out2.decode(errors="replace")


def _whales() -> Any:
    from python_on_whales import docker

    return docker


async def whales(call: Callable[..., T], *args: Any, what: str = "docker", **kwargs: Any) -> T:
    """A python-on-whales call off the event loop, its failure as one line."""
    from python_on_whales.client_config import ClientNotFoundError
    from python_on_whales.exceptions import DockerException

    try:
        return await asyncio.to_thread(call, *args, **kwargs)
    except ClientNotFoundError:
        raise LabError("the docker CLI is not installed (scripts/docker-engine installs Docker)") from None
    except DockerException as e:
        raise LabError(f"{what} failed: {_last_line(e.stderr) or _last_line(e.stdout) or e.return_code}") from None


async def check_engine() -> None:
    """One line saying how to get a Docker engine when none answers."""
    if shutil.which("docker") is None:
        raise LabError("no docker CLI: run scripts/docker-engine (or install Docker) first")
    try:
        await run("docker", "version", "--format", "{{.Server.Version}}", within=20, what="docker version")
    except LabError:
        raise LabError("no Docker engine answers: start one with scripts/docker-engine") from None


async def image_id(image: str) -> str | None:
    try:
        out = await run("docker", "image", "inspect", "--format", "{{.Id}}", image, within=30)
    except LabError:
        return None
    return out.strip() or None


async def image_label(image: str, label: str) -> str | None:
    try:
        out = await run("docker", "image", "inspect", "--format", f'{{{{index .Config.Labels "{label}"}}}}', image,
                        within=30)
    except LabError:
        return None
    value = out.strip()
    return None if value in ("", "<no value>") else value


def _is_root() -> bool:
    return os.geteuid() == 0


# --- building the images ---------------------------------------------------------------------


@dataclass
class BuildRecord:
    image: str
    built: bool  # False: it was there already
    seconds: float | None = None  # this build, when built
    cold_seconds: float | None = None  # the last build from scratch, as recorded


@dataclass
class ImageBuilder:
    """Builds the lab's images here, with no registry (`tuik8s lab build`)."""

    say: Say = print
    cache: Path = field(default_factory=cache_dir)

    @property
    def rootfs_tarball(self) -> Path:
        return self.cache / "rootfs" / f"{DEBIAN_SUITE}-minbase.tar"

    @property
    def times_file(self) -> Path:
        return self.cache / "build-times.json"

    def _tmpdir(self, prefix: str) -> Path:
        base = self.cache / "tmp"
        base.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=prefix, dir=base))

    def recorded_times(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.times_file.read_text()))
        except (OSError, ValueError):
            return {}

    def _record(self, image: str, seconds: float, cold: bool) -> None:
        times = self.recorded_times()
        entry = dict(times.get(image) or {})
        entry["last_seconds"] = round(seconds, 1)
        if cold:
            entry["cold_seconds"] = round(seconds, 1)
            entry["cold_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        entry["built_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        times[image] = entry
        self.times_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.times_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(times, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.times_file)

    async def build(self, images: Iterable[str] = ALL_IMAGES, *, rebuild: bool = False) -> list[BuildRecord]:
        """Build what is missing (everything with `rebuild`), parents first.

        An image is built again when its parent was just built (no image sits on a stale
        parent), when something else made it under our name, and, for the small images,
        when its recipe (the files under lab/) changed; a stale node image only earns a
        note, since rebuilding it takes minutes and root."""
        await check_engine()
        wanted = set(images)
        for image in list(wanted):
            parent = PARENT.get(image)
            while parent:
                wanted.add(parent)
                parent = PARENT.get(parent)
        records: list[BuildRecord] = []
        built: set[str] = set()
        for image in ALL_IMAGES:
            if image not in wanted:
                continue
            exists = await image_id(image) is not None
            have, want = await image_label(image, RECIPE_LABEL), self.recipe(image)
            reason = None
            if not exists:
                reason = "missing"
            elif rebuild:
                reason = "--rebuild"
            elif PARENT.get(image) in built:
                reason = "its parent was rebuilt"
            elif have is None:
                reason = "it exists but the lab did not build it"
            elif have != want:
                if image in QUICK_IMAGES:
                    reason = "its recipe under lab/ changed"
                else:
                    self.say(f"note: {image} was built from an older recipe; "
                              "`tuik8s lab build --rebuild` refreshes it")
            if reason is None:
                cold = (self.recorded_times().get(image) or {}).get("cold_seconds")
                records.append(BuildRecord(image, False, cold_seconds=cold))
                continue
            cold = not exists and (image != BASE_IMAGE or not self.rootfs_tarball.exists())
            self.say(f"building {image}" + ("" if reason == "missing" else f" ({reason})"))
            started = time.monotonic()
            await self._build_one(image)
            seconds = time.monotonic() - started
            self._record(image, seconds, cold)
            built.add(image)
            self.say(f"built {image} in {seconds:.1f}s")
            records.append(BuildRecord(image, True, seconds, seconds if cold else None))
        return records

    def recipe(self, image: str) -> str:
        """A digest of what goes into `image`, kept in its `tuik8s.recipe` label."""
        if image == BUSYBOX_IMAGE:
            return "busybox-" + _tree_digest(LAB_DIR / "busybox")
        if image in APP_IMAGES:
            return f"web-{image.split('/', 1)[1]}-" + _tree_digest(LAB_DIR / "apps" / "web")
        if image == LOG_COLLECTOR_IMAGE:
            return "log-collector-" + _tree_digest(LAB_DIR / "apps" / "log-collector")
        if image == BASE_IMAGE:
            return f"debootstrap-{DEBIAN_SUITE}-minbase"
        if image == NODE_IMAGE:
            return self.node_recipe()
        raise LabError(f"no recipe for {image}")

    async def _build_one(self, image: str) -> None:
        if image == BUSYBOX_IMAGE:
            await self.build_busybox()
        elif image in APP_IMAGES:
            await self.build_app(image.split("/", 1)[1])
        elif image == LOG_COLLECTOR_IMAGE:
            await self._docker_build(LOG_COLLECTOR_IMAGE, LAB_DIR / "apps" / "log-collector", {})
        elif image == BASE_IMAGE:
            await self.build_base()
        elif image == NODE_IMAGE:
            await self.build_node()
        else:
            raise LabError(f"no recipe for {image}")

    # ---- busybox and the sample apps --------------------------------------------------

    async def _busybox_binary(self) -> Path:
        """Debian's static busybox: the installed one, or the package fetched with apt."""
        with contextlib.suppress(LabError):
            owner = await run("dpkg-query", "-S", "/bin/busybox", within=30)
            if owner.startswith("busybox-static:"):
                return Path("/bin/busybox")
        extracted = self.cache / "busybox-static" / "bin" / "busybox"
        if extracted.exists():
            return extracted
        work = self._tmpdir("busybox-")
        try:
            await run("apt-get", "download", "busybox-static", within=300, cwd=work,
                      what="apt-get download busybox-static")
            debs = sorted(work.glob("busybox-static_*.deb"))
            if not debs:
                raise LabError("apt-get download busybox-static left no package")
            await run("dpkg-deb", "-x", work / debs[-1].name, work / "root", what="dpkg-deb -x busybox-static")
            extracted.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(work / "root" / "bin" / "busybox", extracted)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return extracted

    async def build_busybox(self) -> None:
        binary = await self._busybox_binary()
        applets = (await run(binary, "--list", what="busybox --list")).split()
        work = self._tmpdir("busybox-image-")
        try:
            tarball = work / "rootfs.tar"
            await asyncio.to_thread(_busybox_rootfs, tarball, binary, applets, LAB_DIR / "busybox")
            await whales(
                _whales().image.import_, tarball, BUSYBOX_IMAGE, what=f"docker import {BUSYBOX_IMAGE}",
                changes=["ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin", 'CMD ["sh"]',
                         f"LABEL {RECIPE_LABEL}={self.recipe(BUSYBOX_IMAGE)}"],
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)

    async def build_app(self, app: str) -> None:
        work = self._tmpdir(f"{app}-")
        try:
            context = work / "context"
            await asyncio.to_thread(shutil.copytree, LAB_DIR / "apps" / "web", context, symlinks=True)
            (context / "www" / app).symlink_to(".")
            await self._docker_build(f"tuik8s/{app}", context, {"APP": app})
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)

    async def _docker_build(self, tag: str, context: Path, build_args: dict[str, str]) -> None:
        await whales(
            _whales().legacy_build, context, tags=[tag], build_args=build_args, network="none",
            labels={RECIPE_LABEL: self.recipe(tag)}, what=f"docker build {tag}",
        )

    # ---- the base and node images ----------------------------------------------------

    async def build_base(self) -> None:
        tarball = self.rootfs_tarball
        if not tarball.exists():
            await self._debootstrap(tarball)
        await whales(
            _whales().image.import_, tarball, BASE_IMAGE, what=f"docker import {BASE_IMAGE}",
            changes=[
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                'CMD ["/bin/bash"]',
                f"LABEL {RECIPE_LABEL}={self.recipe(BASE_IMAGE)}",
            ],
        )

    async def _need_root(self, what: str) -> None:
        if not _is_root():
            raise LabError(f"{what} needs root (debootstrap and chroot); run `tuik8s lab build` as root")

    async def _ensure_debootstrap(self) -> None:
        if shutil.which("debootstrap"):
            return
        if not shutil.which("apt-get"):
            raise LabError("debootstrap is not installed and there is no apt-get to install it")
        self.say("installing debootstrap")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        await run("apt-get", "update", "-qq", within=600, env=env, what="apt-get update")
        await run("apt-get", "install", "-y", "-qq", "--no-install-recommends", "debootstrap",
                  within=600, env=env, what="apt-get install debootstrap")

    async def _debootstrap(self, tarball: Path) -> None:
        await self._need_root("building tuik8s/base")
        await self._ensure_debootstrap()
        root = self._tmpdir("rootfs-")
        try:
            self.say(f"debootstrap {DEBIAN_SUITE} (minbase) into {root}: about a minute")
            await run(
                "debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", DEBIAN_SUITE, root,
                DEBIAN_MIRROR, within=1800, what="debootstrap",
            )
            await asyncio.to_thread(_drop_apt_caches, root)
            tarball.parent.mkdir(parents=True, exist_ok=True)
            part = tarball.with_suffix(".part")
            await run("tar", "--numeric-owner", "-C", root, "-cf", part, ".", within=600, what="tar of the rootfs")
            part.replace(tarball)
        finally:
            await asyncio.to_thread(shutil.rmtree, root, True)

    def node_recipe(self) -> str:
        """A digest of what goes into the node image, to tell a stale one. Not the
        entrypoint: nodes bind-mount the checkout's, as they do the code."""
        h = hashlib.sha256()
        h.update(" ".join(NODE_PACKAGES).encode())
        h.update("\n".join(runtime_requirements()).encode())
        return h.hexdigest()[:16]

    async def wheels(self) -> Path:
        """The project's runtime dependencies as wheels, at the versions installed here.

        `pip wheel` resolves them against a constraints file of this environment's
        versions, so a node runs what the tests ran; the result is cached by its inputs.
        """
        requirements = runtime_requirements()
        constraints = installed_constraints()
        key = hashlib.sha256(
            ("\n".join(requirements) + "\n--\n" + "\n".join(constraints) + sys.version).encode()
        ).hexdigest()[:16]
        target = self.cache / "wheels" / key
        if (target / ".complete").exists():
            return target
        self.say("collecting the Python wheels for the node image")
        part = Path(str(target) + ".part")
        await asyncio.to_thread(_fresh_dir, part, {
            "requirements.txt": "\n".join(requirements) + "\n",
            "constraints.txt": "\n".join(constraints) + "\n",
        })
        await run(
            sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
            "--wheel-dir", part, "-r", part / "requirements.txt", "-c", part / "constraints.txt",
            within=1800, what="pip wheel (the node's Python dependencies)",
        )
        await asyncio.to_thread(_publish_dir, part, target)
        return target

    async def build_node(self) -> None:
        await self._need_root("building tuik8s/node")
        if not self.rootfs_tarball.exists():
            await self._debootstrap(self.rootfs_tarball)
        wheels = await self.wheels()
        apt_cache = self.cache / "apt-archives"
        (apt_cache / "partial").mkdir(parents=True, exist_ok=True)
        root = self._tmpdir("node-")
        try:
            await run("tar", "--numeric-owner", "-C", root, "-xf", self.rootfs_tarball, within=600,
                      what="unpacking the base rootfs")
            policy = root / "usr" / "sbin" / "policy-rc.d"
            policy.write_text("#!/bin/sh\n# no services start while the image is built\nexit 101\n")
            policy.chmod(0o755)
            resolv = root / "etc" / "resolv.conf"
            resolv.unlink(missing_ok=True)
            shutil.copyfile("/etc/resolv.conf", resolv)
            (root / "tmp" / "wheels").mkdir(parents=True, exist_ok=True)
            self.say(f"installing {', '.join(NODE_PACKAGES)} and the Python dependencies (chroot)")
            # unshare: the mounts die with the process, so a failed build leaves none behind
            script = _NODE_CHROOT_SCRIPT.format(
                packages=" ".join(NODE_PACKAGES), venv=NODE_VENV,
            )
            await run(
                "unshare", "--mount", "--propagation", "private", "sh", "-ec",
                'mount -t proc proc "$1/proc"; mount --bind "$2" "$1/var/cache/apt/archives"; '
                'mount --bind "$3" "$1/tmp/wheels"; exec chroot "$1" /bin/sh -ec "$4"',
                "sh", root, apt_cache, wheels, script, within=1800, what="installing the node's packages",
            )
            policy.unlink()
            resolv.write_text("")
            await asyncio.to_thread(_drop_apt_caches, root)
            (root / "tmp" / "wheels").rmdir()
            for doc in ("usr/share/doc", "usr/share/man", "usr/share/info"):
                await asyncio.to_thread(shutil.rmtree, root / doc, True)
                (root / doc).mkdir(parents=True, exist_ok=True)
            for d in ("etc/tuik8s/node", "etc/tuik8s/lab", f"{NODE_SRC.lstrip('/')}/tuik8s"):
                (root / d).mkdir(parents=True, exist_ok=True)
            entry = root / NODE_ENTRYPOINT.lstrip("/")
            shutil.copyfile(ENTRYPOINT, entry)
            entry.chmod(0o755)
            changes = [
                f"ENV PATH={NODE_VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                f"ENV PYTHONPATH={NODE_SRC}",
                "ENV PYTHONDONTWRITEBYTECODE=1",
                "ENV container=docker",
                "VOLUME /var/lib/docker",
                f"LABEL {RECIPE_LABEL}={self.node_recipe()}",
                f'CMD ["{NODE_ENTRYPOINT}"]',
            ]
            change_args = [arg for c in changes for arg in ("--change", c)]
            self.say(f"importing {NODE_IMAGE}")
            await pipeline(
                ["tar", "--numeric-owner", "-C", str(root), "-c", "."],
                ["docker", "import", *change_args, "-", NODE_IMAGE],
                what=f"docker import {NODE_IMAGE}",
            )
        finally:
            await asyncio.to_thread(shutil.rmtree, root, True)


_NODE_CHROOT_SCRIPT = """
export DEBIAN_FRONTEND=noninteractive LC_ALL=C
apt-get update -qq
apt-get install -y -qq --no-install-recommends {packages} >/dev/null
rm -rf /var/lib/apt/lists/*
python3 -m venv {venv}
{venv}/bin/pip install --quiet --disable-pip-version-check --no-index --no-compile --find-links /tmp/wheels -r /tmp/wheels/requirements.txt -c /tmp/wheels/constraints.txt
# bytecode ahead of time: the kubelet starts faster (the kubernetes client, which it does
# not import, would double its size for nothing)
{venv}/bin/python -m compileall -q -j 0 -x '/site-packages/(kubernetes|pip|setuptools)/' {venv}/lib >/dev/null || true
"""


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(b"x" if os.access(path, os.X_OK) else b"-")
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _drop_apt_caches(root: Path) -> None:
    """What apt keeps for its next run: package files and lists, rebuilt on demand."""
    for pattern in ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*_*"):
        for path in root.glob(pattern):
            path.unlink(missing_ok=True)


def _fresh_dir(path: Path, files: dict[str, str]) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).write_text(text)


def _publish_dir(part: Path, target: Path) -> None:
    (part / ".complete").touch()
    shutil.rmtree(target, ignore_errors=True)
    part.replace(target)


def runtime_requirements() -> list[str]:
    """The project's runtime dependencies (no extras), as declared."""
    try:
        declared = importlib.metadata.requires("tuik8s") or []
    except importlib.metadata.PackageNotFoundError:
        raise LabError("tuik8s is not installed in this Python; run scripts/dev first") from None
    return sorted(req for req in declared if "extra ==" not in req and "extra==" not in req)


def installed_constraints() -> list[str]:
    pins: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and name.lower() != "tuik8s":
            pins[name.lower()] = f"{name}=={dist.version}"
    return sorted(pins.values())


def _busybox_rootfs(tarball: Path, binary: Path, applets: list[str], extras: Path) -> None:
    """A root filesystem of one static busybox and its applet links, owned by root."""

    def entry(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, 0, 0, int(time.time())
        return info

    with tarfile.open(tarball, "w") as tar:
        for d, mode in (("bin", 0o755), ("etc", 0o755), ("root", 0o700), ("tmp", 0o1777), ("var", 0o755),
                        ("var/log", 0o755), ("proc", 0o755), ("sys", 0o755), ("dev", 0o755)):
            tar.addfile(entry(d, tarfile.DIRTYPE, mode))
        info = entry("bin/busybox", tarfile.REGTYPE, 0o755)
        info.size = binary.stat().st_size
        with binary.open("rb") as f:
            tar.addfile(info, f)
        for applet in applets:
            if applet != "busybox":
                link = entry(f"bin/{applet}", tarfile.SYMTYPE, 0o777)
                link.linkname = "busybox"
                tar.addfile(link)
        for path in sorted(extras.rglob("*")):
            if path.is_file():
                rel = path.relative_to(extras).as_posix()
                info = entry(rel, tarfile.REGTYPE, 0o644)
                info.size = path.stat().st_size
                with path.open("rb") as f:
                    tar.addfile(info, f)


# --- the provider ---------------------------------------------------------------------------


@dataclass
class ApiEndpoint:
    """How nodes reach and authenticate to the control plane."""

    port: int
    token: str
    ca_pem: bytes


@dataclass
class _Undo:
    """What an `up` made, to take back if it fails."""

    steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = field(default_factory=list)

    def add(self, what: str, step: Callable[[], Awaitable[Any]]) -> None:
        self.steps.append((what, step))

    async def run(self) -> None:
        for what, step in reversed(self.steps):
            try:
                await step()
            except Exception as e:  # noqa: BLE001 - best effort: undo the rest anyway
                log.warning("cleaning up %s failed: %s", what, e)
        self.steps.clear()


class DockerNodeProvider:
    """Nodes of one cluster as Docker-in-Docker containers on the host's Docker engine."""

    name = "docker"

    def __init__(
        self, cluster: str, data_dir: Path, *, api: ApiEndpoint | None = None, say: Say | None = None,
        builder: ImageBuilder | None = None, preload: Sequence[str] = NODE_PRELOADED,
    ) -> None:
        self.cluster = cluster
        self.data_dir = Path(data_dir)
        self.api = api
        self.say: Say = say or (lambda line: log.info("%s", line))
        self.builder = builder or ImageBuilder(say=self.say)
        self.preload = tuple(preload)
        # called once the network exists: can nodes reach the API server at its gateway?
        self.api_check: Callable[[LabNetwork], Awaitable[None]] | None = None
        self.registry = lab_registry()

    # ---- naming and state on disk ----------------------------------------------------

    @property
    def lab_dir(self) -> Path:
        return self.data_dir / "lab"

    @property
    def network_name(self) -> str:
        return f"tuik8s-{self.cluster}"

    def container_name(self, node: str) -> str:
        return f"tuik8s-{self.cluster}-{node}"

    def _node_of(self, name: str) -> str:
        """A node's name from what a user typed: `node2` or `tuik8s-<cluster>-node2`."""
        prefix = f"tuik8s-{self.cluster}-"
        return name[len(prefix):] if name.startswith(prefix) else name

    async def network(self, *, allocate: bool = False) -> LabNetwork | None:
        """This cluster's lab addresses: from its docker network, else (with `allocate`) a
        reservation, else the lab's state file (what it had last time).

        An index is free when no docker network overlaps its subnet and no other lab holds
        it: reserved machine-wide (`LAB_REGISTRY`, under a lock) and not yet given its
        network, or remembered by a cluster in a data dir beside this one. `tuik8s up` and
        the e2e tests allocate before the network exists (the API server must advertise the
        gateway first), so the reservation is what keeps two labs started together, from
        any data dirs, off the same subnet. A lab prefers the index it had before."""
        found = await self._network_subnet()
        if found is not None:
            return LabNetwork(self.cluster, int(found.split(".")[2]))
        remembered = self._remembered_index()
        if allocate:
            return LabNetwork(self.cluster, await self._reserve(remembered))
        return LabNetwork(self.cluster, remembered) if remembered is not None else None

    async def network_exists(self) -> bool:
        return await self._network_subnet() is not None

    async def _network_subnet(self) -> str | None:
        try:
            out = await run("docker", "network", "inspect", "--format",
                            "{{range .IPAM.Config}}{{.Subnet}} {{end}}", self.network_name, within=30)
        except LabError:
            return None
        subnets = out.split()
        return subnets[0] if subnets else None

    @property
    def _state_file(self) -> Path:
        return self.lab_dir / "lab.json"

    def _remembered_index(self) -> int | None:
        return _lab_index(self._state_file)

    async def _reserve(self, remembered: int | None) -> int:
        """Cluster "default" is 0; any other the index it had, if still free, else the
        lowest free one. Recorded in the registry and in the lab's state file."""
        candidates = [0] if self.cluster == "default" else list(range(1, MAX_CLUSTERS))
        if remembered in candidates:
            candidates.remove(remembered)
            candidates.insert(0, remembered)
        async with _registry_lock(self.registry):
            networks = await _docker_subnets()
            if self.network_name in networks:  # made meanwhile, by another `lab up` of this cluster
                return int(str(networks[self.network_name][0].network_address).split(".")[2])
            used = [net for nets in networks.values() for net in nets]
            taken = self._held_elsewhere()
            for index in candidates:
                candidate = ipaddress.ip_network(LabNetwork(self.cluster, index).subnet)
                if index not in taken and not any(candidate.overlaps(u) for u in used):
                    break
            else:
                raise LabError(f"no free lab subnet left in 172.30.0.0/20 for cluster {self.cluster}: "
                               "`tuik8s lab down --cluster NAME` a lab you no longer use")
            self._release()
            self.lab_dir.mkdir(parents=True, exist_ok=True)
            _write_atomic(self._state_file, json.dumps({"cluster": self.cluster, "index": index}) + "\n", 0o644)
            record = {"cluster": self.cluster, "data_dir": str(self.data_dir.resolve()), "at": time.time()}
            _write_atomic(self.registry / f"{index}.json", json.dumps(record) + "\n", 0o644)
        return index

    def _held_elsewhere(self) -> set[int]:
        """Indexes other labs hold: live reservations (stale ones, whose lab is gone or
        which outlived `RESERVATION_GRACE`, are dropped) and siblings' remembered ones."""
        held: set[int] = set()
        mine = self.data_dir.resolve()
        for entry in self.registry.glob("*.json"):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError, AttributeError):
                record = json.loads(entry.read_text())
                index, owner = int(entry.stem), Path(record["data_dir"])
                if owner == mine:
                    continue
                if _lab_index(owner / "lab" / "lab.json") == index \
                        and time.time() - float(record["at"]) < RESERVATION_GRACE:
                    held.add(index)
                    continue
                entry.unlink(missing_ok=True)
        for state in self.data_dir.parent.glob("*/lab/lab.json"):
            if state.parent.parent != self.data_dir:
                index_ = _lab_index(state)
                if index_ is not None:
                    held.add(index_)
        return held

    def _release(self) -> None:
        """Drop this lab's reservations: its network holds the subnet now, or it is gone."""
        mine = str(self.data_dir.resolve())
        for entry in self.registry.glob("*.json"):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError, AttributeError):
                if json.loads(entry.read_text())["data_dir"] == mine:
                    entry.unlink(missing_ok=True)

    # ---- reading the lab -----------------------------------------------------------------

    async def _containers(self) -> list[dict[str, Any]]:
        """`docker inspect` of every node container of this cluster."""
        ids = (await run("docker", "ps", "-aq", "--no-trunc", "--filter", f"label={CLUSTER_LABEL}={self.cluster}",
                         within=30)).split()
        if not ids:
            return []
        return list(json.loads(await run("docker", "inspect", *ids, within=30)))

    def _machine(self, c: dict[str, Any], runtime_ready: bool | None = None) -> NodeMachine:
        labels = (c.get("Config") or {}).get("Labels") or {}
        nets = (c.get("NetworkSettings") or {}).get("Networks") or {}
        ip = ((nets.get(self.network_name) or {}).get("IPAMConfig") or {}).get("IPv4Address") \
            or (nets.get(self.network_name) or {}).get("IPAddress") or None
        return NodeMachine(
            name=labels.get(NODE_LABEL, ""), state=(c.get("State") or {}).get("Status", "unknown"),
            address=ip, pod_cidr=labels.get(POD_CIDR_LABEL), machine_id=str(c.get("Name", "")).lstrip("/"),
            runtime_ready=runtime_ready,
        )

    async def nodes(self) -> list[NodeMachine]:
        machines = [self._machine(c) for c in await self._containers()]
        return sorted(machines, key=lambda m: (node_number(m.name) or 0, m.name))

    async def runtime_ready(self, node: str) -> bool:
        try:
            await run("docker", "exec", self.container_name(node), "docker", "version", "--format",
                      "{{.Server.Version}}", within=10)
        except LabError:
            return False
        return True

    async def status(self) -> LabStatus:
        net = await self.network()
        exists = await self._network_subnet() is not None
        st = LabStatus(cluster=self.cluster, provider=self.name)
        if exists and net is not None:
            st.network, st.subnet = net.name, net.subnet
            if self.api is not None:
                st.api_server = f"https://{net.gateway}:{self.api.port}"
        machines = await self.nodes()
        ready = await asyncio.gather(*(self.runtime_ready(m.name) if m.state == "running" else _false()
                                       for m in machines))
        st.nodes = [NodeMachine(m.name, m.state, m.address, m.pod_cidr, m.machine_id, r)
                    for m, r in zip(machines, ready, strict=True)]
        if net is not None and exists:
            routes = await host_routes(net)
            for m in st.nodes:
                if m.pod_cidr and m.address and routes.get(m.pod_cidr) != m.address:
                    st.problems.append(f"the host has no route to {m.name}'s pods ({m.pod_cidr} via {m.address})")
        return st

    # ---- up ---------------------------------------------------------------------------------

    async def up(self, n: int) -> list[NodeMachine]:
        if not 1 <= n <= MAX_NODES:
            raise LabError(f"--nodes must be between 1 and {MAX_NODES}")
        if self.api is None:
            raise LabError("internal: the provider needs the API server's endpoint to create nodes")
        if not _is_root():
            raise LabError("the lab sets host routes and a firewall rule: run `tuik8s lab up` as root")
        await check_engine()
        undo = _Undo()
        try:
            return await self._up(n, undo)
        except BaseException:
            await asyncio.shield(undo.run())
            raise

    async def ensure_network(self, undo: _Undo | None = None) -> LabNetwork:
        """The cluster's network and the host rule for pod traffic across its bridge."""
        net = await self.network(allocate=True)
        assert net is not None
        for attempt in range(3):
            if await self._network_subnet() is not None:
                break
            try:
                await run(
                    "docker", "network", "create", "--driver", "bridge", "--internal",
                    "--subnet", net.subnet, "--gateway", net.gateway,
                    "--label", f"{CLUSTER_LABEL}={self.cluster}", net.name,
                    within=60, what=f"docker network create {net.name}",
                )
            except LabError as e:
                # a network made since the reservation (not by a lab) took the subnet:
                # the next allocation sees it and moves on
                if "Pool overlaps" not in str(e) or attempt == 2:
                    raise
                net = await self.network(allocate=True)
                assert net is not None
                continue
            with contextlib.suppress(LabError, OSError):
                await _registry_locked(self.registry, self._release)
            if undo is not None:
                undo.add(f"network {net.name}", functools.partial(self._remove_network, net))
            break
        bridge = await self._bridge(net)
        if await _host_rule(bridge, "-C", self.cluster):
            return net
        await _host_rule(bridge, "-I", self.cluster, check=True)
        if undo is not None:
            undo.add("the host firewall rule", lambda: _host_rule(bridge, "-D", self.cluster))
        return net

    async def _bridge(self, net: LabNetwork) -> str:
        out = await run("docker", "network", "inspect", "--format", "{{.Id}}", net.name, within=30)
        return "br-" + out.strip()[:12]

    async def _up(self, n: int, undo: _Undo) -> list[NodeMachine]:
        assert self.api is not None
        missing = [image for image in (NODE_IMAGE, *self.preload) if await image_id(image) is None]
        if missing:
            self.say(f"building {', '.join(missing)}")
            await self.builder.build(missing)
        net = await self.ensure_network(undo)
        if self.api_check is not None:
            await self.api_check(net)
        containers = await self._containers()
        existing = {m.name: m for m in map(self._machine, containers)}
        server = f"https://{net.gateway}:{self.api.port}"
        for c in containers:
            if f"TUIK8S_API_SERVER={server}" not in ((c.get("Config") or {}).get("Env") or []):
                self.say(f"note: {self._machine(c).name} was made for another API server address than {server}; "
                         "`tuik8s lab down` and `up` remake the nodes")
        wanted = [node_name(i) for i in range(1, n + 1)]
        create = [name for name in wanted if name not in existing]
        start = [name for name in wanted if name in existing and existing[name].state != "running"]
        all_nodes = sorted(set(existing) | set(wanted), key=lambda s: node_number(s) or 0)
        self._write_routes(net, all_nodes)
        undo.add("the routes file", functools.partial(asyncio.to_thread, self._write_routes, net, sorted(existing)))
        for name in all_nodes:
            # every time: a restarted server may have a new CA or token; kubelets read them at start
            await self._write_credentials(net, name)
        for name in all_nodes:
            num = node_number(name)
            if num is not None and await _host_route(net.pod_cidr(num), net.node_ip(num), net):
                undo.add(f"host route to {name}", functools.partial(_del_host_route, net.pod_cidr(num)))
        if create:
            self.say(f"creating {', '.join(create)}")
        if start:
            self.say(f"starting {', '.join(start)}")
        ids = await self._local_image_ids(self.preload)
        work = self.builder._tmpdir("preload-")
        try:
            archive = work / "images.tar"
            await run("docker", "save", "-o", archive, *self.preload, within=600, what="docker save")
            # each node on its own: created, its engine up, images loaded, while the others
            # are still starting (every wanted node: an image rebuilt since reaches them too)
            await _all(
                self._bring_up(net, name, "create" if name in create else "start" if name in start else None,
                               ids, archive, undo)
                for name in wanted
            )
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)
        await self._apply_routes([name for name in all_nodes if name not in create + start])
        return await self.nodes()

    async def _bring_up(
        self, net: LabNetwork, name: str, how: str | None, ids: dict[str, str], archive: Path, undo: _Undo,
    ) -> None:
        if how == "create":
            await self._create_node(net, name, undo)
        elif how == "start":
            await whales(_whales().container.start, self.container_name(name), what=f"docker start {name}")
        if how is not None:
            await self._wait_runtime(name)
        present = {} if how == "create" else await self._node_image_ids(name, list(ids))
        if any(present.get(image) != image_id_ for image, image_id_ in ids.items()):
            await self._load_into(name, archive)

    def _write_routes(self, net: LabNetwork, names: Iterable[str]) -> None:
        """The routes file every node reads: "CIDR VIA NAME" per node."""
        shared = self.lab_dir / "shared"
        shared.mkdir(parents=True, exist_ok=True)
        lines = []
        for name in names:
            num = node_number(name)
            if num is not None:
                lines.append(f"{net.pod_cidr(num)} {net.node_ip(num)} {name}")
        _write_atomic(shared / "routes", "\n".join(lines) + "\n", 0o644)

    async def _node_token(self, name: str) -> str:
        """The node's own token (user `system:node:NAME`, group `system:nodes`), so the API
        server lets its kubelet touch only its own Node, Lease and pods. Minted by the
        `tuik8s token` command in the control plane's data dir (nodes never import the API
        server); the admin token only when that data dir holds no token file."""
        assert self.api is not None
        if not (self.data_dir / "tokens.json").exists():
            log.warning("no tokens.json in %s: node %s gets the admin token", self.data_dir, name)
            return self.api.token
        out = await run(
            sys.executable, "-m", "tuik8s.cli", "token", "create", "--data-dir", self.data_dir,
            "--user", f"system:node:{name}", "--group", "system:nodes", "--reuse",
            within=60, what=f"minting the token of node {name}",
        )
        return out.strip()

    async def _write_credentials(self, net: LabNetwork, name: str) -> None:
        """The kubelet's credentials: the node's own token, the CA."""
        import yaml

        from tuik8s.client.kubeconfig import build_kubeconfig

        assert self.api is not None
        d = self.lab_dir / "nodes" / name
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        server = f"https://{net.gateway}:{self.api.port}"
        token = await self._node_token(name)
        _write_atomic(d / "token", token + "\n", 0o600)
        _write_atomic(d / "ca.crt", self.api.ca_pem.decode(), 0o644)
        # the API server's credential for the node's log endpoint (kubectl logs)
        log_token = self.data_dir / "kubelet-client-token"
        if log_token.exists():
            _write_atomic(d / "log-token", log_token.read_text(), 0o600)
        kubeconfig = build_kubeconfig(f"tuik8s-{self.cluster}", server, self.api.ca_pem, token)
        _write_atomic(d / "kubeconfig", yaml.safe_dump(kubeconfig, sort_keys=False), 0o600)

    async def _create_node(self, net: LabNetwork, name: str, undo: _Undo) -> None:
        assert self.api is not None
        num = node_number(name)
        assert num is not None
        container = self.container_name(name)
        volumes: list[tuple[str, str, str]] = [
            ("/sys/fs/cgroup", "/sys/fs/cgroup", "rw"),
            (str(PACKAGE_DIR), f"{NODE_SRC}/tuik8s", "ro"),
            (str(ENTRYPOINT), NODE_ENTRYPOINT, "ro"),
            (str(LAB_DIR), NODE_LAB, "ro"),
            (str(self.lab_dir / "nodes" / name), "/etc/tuik8s/node", "ro"),
            (str(self.lab_dir / "shared"), "/etc/tuik8s/lab", "ro"),
        ]
        if HOST_HAS_MODULES:
            volumes.append(("/lib/modules", "/lib/modules", "ro"))
        envs = {
            "TUIK8S_NODE_NAME": name,
            "TUIK8S_POD_CIDR": net.pod_cidr(num),
            "TUIK8S_CLUSTER_CIDR": net.cluster_cidr,
            "TUIK8S_NODE_IP": net.node_ip(num),
            "TUIK8S_API_SERVER": f"https://{net.gateway}:{self.api.port}",
            "TUIK8S_DNS": net.dns,
            "TUIK8S_CLUSTER_DNS": DNS_SERVICE_IP,
            "TUIK8S_CLUSTER": self.cluster,
        }
        if os.environ.get("TUIK8S_KUBELET_COMMAND"):
            envs["TUIK8S_KUBELET_COMMAND"] = os.environ["TUIK8S_KUBELET_COMMAND"]
        undo.add(f"container {container}", lambda: self._remove_container(container))
        await whales(
            _whales().container.run, NODE_IMAGE, detach=True, name=container, hostname=name,
            labels={CLUSTER_LABEL: self.cluster, NODE_LABEL: name, POD_CIDR_LABEL: net.pod_cidr(num)},
            networks=[net.name], ip=net.node_ip(num), network_aliases=[name], dns=[net.dns], init=True,
            cap_add=list(DIND_CAP_ADD), cap_drop=list(DIND_CAP_DROP), security_options=list(DIND_SECURITY),
            device_cgroup_rules=list(DIND_DEVICE_RULES), cgroupns="host", volumes=volumes,
            mounts=[["type=volume", "target=/var/lib/docker"]], envs=envs, stop_timeout=20, pull="never",
            what=f"docker run {container}",
        )

    async def _wait_runtime(self, name: str, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if await self.runtime_ready(name):
                return
            state = await self._state(name)
            if state not in ("running", "restarting", "created"):
                logs = await _container_log_tail(self.container_name(name))
                raise LabError(f"{name} stopped while starting ({state}){': ' + logs if logs else ''}")
            await asyncio.sleep(0.2)
        raise LabError(f"the Docker engine in {name} did not answer within {within:g}s "
                       f"(docker exec {self.container_name(name)} cat /var/log/dockerd.log)")

    async def _state(self, name: str) -> str:
        try:
            out = await run("docker", "inspect", "--format", "{{.State.Status}}", self.container_name(name), within=30)
        except LabError:
            return "missing"
        return out.strip()

    async def _apply_routes(self, names: Iterable[str]) -> None:
        """Running nodes re-read the routes file (new peers); started ones read it themselves."""
        running = [m.name for m in await self.nodes() if m.state == "running" and m.name in set(names)]
        await _all(run("docker", "exec", self.container_name(name), NODE_ENTRYPOINT, "routes",
                       within=30, what=f"routes on {name}") for name in running)

    # ---- images on nodes --------------------------------------------------------------

    async def load_image(self, image: str, nodes: Sequence[str] | None = None) -> LoadResult:
        return (await self.load_images([image], nodes))[0]

    async def load_images(self, images: Sequence[str], nodes: Sequence[str] | None = None) -> list[LoadResult]:
        """As kind does it: `docker save | docker exec -i NODE docker load`, all nodes at once,
        skipping a node that has the same image ID. One save serves every node."""
        ids = await self._local_image_ids(images)
        machines = [m for m in await self.nodes() if m.state == "running"]
        if nodes is not None:
            wanted = {self._node_of(n) for n in nodes}
            unknown = wanted - {m.name for m in await self.nodes()}
            if unknown:
                raise LabError(f"no node {', '.join(sorted(unknown))} in cluster {self.cluster}")
            machines = [m for m in machines if m.name in wanted]
        if not machines:
            raise LabError(f"no running nodes in cluster {self.cluster} (tuik8s lab up)")
        need: dict[str, list[str]] = {}
        for m, present in zip(machines, await _all(self._node_image_ids(m.name, images) for m in machines),
                              strict=True):
            need[m.name] = [image for image in images if present.get(image) != ids[image]]
        to_save = [image for image in images if any(image in lst for lst in need.values())]
        if to_save:
            work = self.builder._tmpdir("save-")
            try:
                archive = work / "images.tar"
                await run("docker", "save", "-o", archive, *to_save, within=600, what=f"docker save {' '.join(to_save)}")
                await _all(self._load_into(name, archive) for name, lst in need.items() if lst)
            finally:
                await asyncio.to_thread(shutil.rmtree, work, True)
        return [
            LoadResult(image, tuple(n for n, lst in need.items() if image in lst),
                       tuple(n for n, lst in need.items() if image not in lst))
            for image in images
        ]

    async def _local_image_ids(self, images: Iterable[str]) -> dict[str, str]:
        ids = {}
        for image in images:
            found = await image_id(image)
            if found is None:
                raise LabError(f"no image {image} here (build it, or `docker pull` it when you have a registry)")
            ids[image] = found
        return ids

    async def _node_image_ids(self, node: str, images: Sequence[str]) -> dict[str, str]:
        """{image: ID} of the wanted images the node's engine has, in one exec."""
        out = await run("docker", "exec", self.container_name(node), "docker", "images", "--no-trunc",
                        "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", within=30, what=f"docker images on {node}")
        have = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
        found: dict[str, str] = {}
        for image in images:
            ref = image if ":" in image.rsplit("/", 1)[-1] else f"{image}:latest"
            if ref in have:
                found[image] = have[ref]
        return found

    async def _load_into(self, node: str, archive: Path) -> None:
        proc_in = archive.open("rb")
        try:
            proc = await asyncio.create_subprocess_exec(
                "docker", "exec", "-i", self.container_name(node), "docker", "load", "-q",
                stdin=proc_in, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            out, err = await proc.communicate()
        finally:
            proc_in.close()
        if proc.returncode != 0:
            raise LabError(f"docker load on {node} failed: {_last_line(err) or _last_line(out)}")

    # ---- stop, start, kill --------------------------------------------------------------

    async def _existing(self, node: str) -> str:
        name = self._node_of(node)
        if await self._state(name) == "missing":
            raise LabError(f"no node {name} in cluster {self.cluster} (see `tuik8s lab status`)")
        return name

    async def stop(self, node: str) -> None:
        name = await self._existing(node)
        await whales(_whales().container.stop, self.container_name(name), what=f"docker stop {name}")

    async def start(self, node: str) -> None:
        name = await self._existing(node)
        await whales(_whales().container.start, self.container_name(name), what=f"docker start {name}")
        await self._wait_runtime(name)

    async def kill(self, node: str) -> None:
        name = await self._existing(node)
        if await self._state(name) != "running":
            return
        await whales(_whales().container.kill, self.container_name(name), what=f"docker kill {name}")

    # ---- down -------------------------------------------------------------------------------

    # how long `down` waits, after `docker rm` gave up, for the engine to finish a removal
    removal_wait = 60.0

    async def down(self) -> None:
        """Remove the nodes, revoke their credentials, then the network, routes and state.

        A node's token goes with its node (a later `up` mints a fresh one): the token file
        is edited directly, so this holds whether or not the API server runs, and a running
        server refuses the token from its next request on. A container the engine is still
        removing keeps the network (it has an endpoint on it) and ends `down` with one line
        saying to run it again; a second `down` finds what is left and finishes."""
        machines = await self.nodes()
        lingering: list[str] = []
        if machines:
            self.say(f"removing {len(machines)} node{'s' if len(machines) != 1 else ''}")
            gone = await asyncio.gather(*(self._remove_container(m.machine_id) for m in machines))
            lingering = [m.machine_id for m, ok in zip(machines, gone, strict=True) if not ok]
        await self._revoke_tokens([m.name for m in machines])
        if lingering:
            raise LabError(f"{', '.join(lingering)} {'is' if len(lingering) == 1 else 'are'} still being removed by "
                           f"the Docker engine: run `tuik8s lab down --cluster {self.cluster}` again once "
                           "`docker ps -a` no longer lists it")
        net = await self.network()
        if net is not None:
            await self._remove_network(net)
        with contextlib.suppress(LabError, OSError):
            await _registry_locked(self.registry, self._release)
        shutil.rmtree(self.lab_dir / "nodes", ignore_errors=True)
        shutil.rmtree(self.lab_dir / "shared", ignore_errors=True)

    async def _revoke_tokens(self, names: Iterable[str]) -> None:
        """Revoke the tokens of the nodes named and of every node whose credentials this lab
        wrote (a container removed by hand left its token behind); say so in one line."""
        known = {p.name for p in (self.lab_dir / "nodes").glob("*") if p.is_dir()}
        nodes = sorted({*names, *known}, key=lambda n: (node_number(n) or 0, n))
        try:
            revoked = await revoke_node_tokens(self.data_dir, nodes)
        except LabError as e:
            self.say(f"the nodes' tokens stay valid ({e}): revoke them with "
                     f"`tuik8s token revoke --data-dir {self.data_dir} system:node:NAME`")
            return
        if revoked:
            self.say(f"revoked the API token{'s' if revoked != 1 else ''} of {', '.join(nodes)} "
                     "(refused from the next request on)")

    async def _remove_container(self, container: str) -> bool:
        """`docker rm -f` a container; True once it is gone. A removal that runs past the
        command's time (a big /var/lib/docker volume on a busy disk) goes on in the engine:
        wait, bounded, until `docker inspect` no longer finds it, rather than report it gone."""
        try:
            # -v: the node's anonymous /var/lib/docker volume goes with it
            await run("docker", "rm", "-f", "-v", container, within=120, what=f"docker rm {container}")
            return True
        except LabError as e:
            if "no such container" in str(e).lower():
                return True
            log.warning("%s; waiting for the engine to finish removing it", e)
        return await container_gone(container, within=self.removal_wait)

    async def _remove_network(self, net: LabNetwork) -> None:
        for cidr in await host_routes(net):
            await _del_host_route(cidr)
        if await self._network_subnet() is not None:
            bridge = await self._bridge(net)
            while await _host_rule(bridge, "-C", self.cluster):
                await _host_rule(bridge, "-D", self.cluster)
            await run("docker", "network", "rm", net.name, within=60, what=f"docker network rm {net.name}")


# --- clean-up helpers shared with the Vagrant lab ---------------------------------------------


async def container_gone(container: str, *, within: float, interval: float = 0.5) -> bool:
    """Poll `docker inspect` until the engine answers "No such object" (True), or `within`
    seconds pass with the container still there (False)."""
    deadline = time.monotonic() + within
    while True:
        try:
            await run("docker", "inspect", "--format", "{{.Id}}", container, within=30,
                      what=f"docker inspect {container}")
        except LabError as e:
            if "no such object" in str(e).lower() or "no such container" in str(e).lower():
                return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval)


async def revoke_node_tokens(data_dir: Path, nodes: Iterable[str]) -> int:
    """Revoke every token of user `system:node:<node>` for each node, in the control plane's
    data dir; how many were revoked. Runs `tuik8s token revoke --missing-ok` (node providers
    may not import the API server's package), so an already revoked node is no error."""
    users = [f"system:node:{n}" for n in nodes]
    if not users or not (Path(data_dir) / "tokens.json").exists():
        return 0
    out = await run(
        sys.executable, "-m", "tuik8s.cli", "token", "revoke", "--data-dir", data_dir, "--missing-ok", *users,
        within=60, what="revoking the nodes' tokens",
    )
    words = out.split()
    return int(words[1]) if len(words) > 1 and words[0] == "revoked" and words[1].isdigit() else 0


# --- the machine-wide registry of lab indexes -------------------------------------------------


def lab_registry() -> Path:
    return LAB_REGISTRY if _is_root() else cache_dir() / "labs"


def _lab_index(state: Path) -> int | None:
    """The index a lab's state file (DATA/lab/lab.json) remembers."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return int(json.loads(state.read_text())["index"])
    return None


@contextlib.asynccontextmanager
async def _registry_lock(registry: Path) -> AsyncIterator[None]:
    """The registry to ourselves, across processes (flock, polled so a wait can be cancelled)."""
    try:
        fd = await asyncio.to_thread(_open_lock, registry)
    except OSError as e:
        raise LabError(f"cannot use the lab registry {registry}: {e.strerror or e}") from None
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(0.05)
        yield
    finally:
        os.close(fd)  # and with it the lock


def _open_lock(registry: Path) -> int:
    registry.mkdir(parents=True, exist_ok=True)
    return os.open(registry / ".lock", os.O_RDWR | os.O_CREAT, 0o644)


async def _registry_locked(registry: Path, step: Callable[[], None]) -> None:
    async with _registry_lock(registry):
        step()


async def _docker_subnets() -> dict[str, list[ipaddress.IPv4Network]]:
    """The IPv4 subnets of every docker network on this engine, by network name."""
    for attempt in range(3):
        out = await run("docker", "network", "ls", "-q", within=30)
        try:
            lines = await run("docker", "network", "inspect", "--format",
                              "{{.Name}} {{range .IPAM.Config}}{{.Subnet}} {{end}}", *out.split(),
                              within=30) if out.split() else ""
            break
        except LabError as e:  # one removed between the list and the inspect: list again
            if "No such network" not in str(e) or attempt == 2:
                raise
    found: dict[str, list[ipaddress.IPv4Network]] = {}
    for line in lines.splitlines():
        name, *subnets = line.split() or [""]
        for s in subnets:
            with contextlib.suppress(ValueError):
                net = ipaddress.ip_network(s, strict=False)
                if isinstance(net, ipaddress.IPv4Network):
                    found.setdefault(name, []).append(net)
    return found


async def _all(coros: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Run together; the first failure cancels the others and is raised as itself (one line)."""
    tasks: list[asyncio.Task[T]] = []
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coros]
    except BaseExceptionGroup as eg:
        raise eg.exceptions[0] from None
    return [t.result() for t in tasks]


async def _false() -> bool:
    return False


async def _container_log_tail(container: str) -> str:
    try:
        proc = await asyncio.create_subprocess_exec(
            "docker", "logs", "--tail", "5", container, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
    except OSError:
        return ""
    return _last_line(out)


def _write_atomic(path: Path, text: str, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    tmp.replace(path)


# --- the host's side of the pod network ---------------------------------------------------


async def host_routes(net: LabNetwork) -> dict[str, str]:
    """Host routes into this cluster's pod CIDRs: {cidr: via}."""
    out = await run("ip", "-4", "route", "show", "root", net.cluster_cidr, within=10)
    routes: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "via":
            routes[parts[0]] = parts[2]
    return routes


async def _host_route(cidr: str, via: str, net: LabNetwork) -> bool:
    """Route `cidr` via a node; True if this call added it."""
    if (await host_routes(net)).get(cidr) == via:
        return False
    await run("ip", "route", "replace", cidr, "via", via, within=10, what=f"ip route replace {cidr}")
    return True


async def _del_host_route(cidr: str) -> None:
    with contextlib.suppress(LabError):
        await run("ip", "route", "del", cidr, within=10)


async def _host_rule(bridge: str, op: str, cluster: str, *, check: bool = False) -> bool:
    """Docker drops traffic on an internal network's bridge whose addresses are outside its
    subnet; pod IPs are, so this rule (in DOCKER-USER, docker's chain for users) lets traffic
    from the bridge to the same bridge pass: node to node, pod to pod, nothing else."""
    cmd = ["iptables", "-w", op, "DOCKER-USER"]
    if op == "-I":
        cmd.append("1")
    cmd += ["-i", bridge, "-o", bridge, "-m", "comment", "--comment", f"tuik8s-{cluster}", "-j", "ACCEPT"]
    try:
        await run(*cmd, within=20, what=f"iptables {op} DOCKER-USER")
    except LabError:
        if check:
            raise
        return False
    return True
