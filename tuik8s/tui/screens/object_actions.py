"""The keys that act on the selected object, shared by the list screen and the cluster map.

A screen that mixes this in says what is selected (`selection()`); the actions run their
requests in workers owned by the app, not the screen, so leaving the screen (esc from the
map during a drain) does not cut a half-done operation short. Each ends in one status
line: what was done, or the error as kubectl would word it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.app import SuspendNotSupported
from textual.screen import Screen

from tuik8s.client.errors import ApiError
from tuik8s.tui import ops
from tuik8s.tui.actions import NodeActionError
from tuik8s.tui.views import ViewSpec

if TYPE_CHECKING:
    from tuik8s.tui.app import TuiApp

Obj = dict[str, Any]


@dataclass
class Selection:
    spec: ViewSpec
    key: str  # namespace/name or name
    namespace: str | None
    name: str
    obj: Obj | None  # from the informer cache; may be missing for a preview row


@dataclass
class KeptEdit:
    """An edit the server refused, kept so `e` reopens it instead of losing the work."""

    patch: Obj | None  # the user's changes, rebased onto the fresh object on reopen
    text: str | None  # or the raw text, when it was not even valid YAML
    error: str


class ObjectActions(Screen[Any]):
    """Describe, YAML, edit, delete, scale, restart, logs, and the node keys."""

    @property
    def tui(self) -> TuiApp:
        return self.app  # type: ignore[return-value]

    def selection(self) -> Selection | None:  # overridden by the screens
        return None

    # ---- plumbing ------------------------------------------------------------------------

    def status(self, text: str, *, error: bool = False) -> None:
        self.tui.show_status(text, error=error)

    def run_op(self, make: Callable[[], Awaitable[str | None]], *, group: str = "api",
               exclusive: bool = False) -> None:
        """Run an API call in an app worker; its result or error becomes the status line."""

        async def job() -> None:
            try:
                message = await make()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - every failure is one line, never a crash
                self.status(ops.one_line(e), error=True)
                return
            if message:
                self.status(message)

        self.app.run_worker(job(), group=group, exclusive=exclusive, exit_on_error=False)

    def _need(self, verb: str | None = None, *, what: str = "") -> Selection | None:
        sel = self.selection()
        if sel is None:
            self.status("nothing selected", error=True)
            return None
        if verb is not None and verb not in sel.spec.verbs:
            self.status(f"{what or verb} does not apply to {sel.spec.title.lower()}", error=True)
            return None
        return sel

    @property
    def client(self) -> Any:
        session = self.tui.session
        return session.client if session is not None else None

    def _connected(self) -> bool:
        if self.tui.session is None:
            self.status("not connected to a cluster: pick a context with :ctx", error=True)
            return False
        return True

    # ---- viewing -------------------------------------------------------------------------

    @staticmethod
    def _title(sel: Selection) -> str:
        where = f"  in {sel.namespace}" if sel.namespace else ""
        return f"{ops.ref(sel.spec.resource, sel.name)}{where}   (esc back)"

    def action_describe(self) -> None:
        sel = self._need()
        if sel is None or not self._connected():
            return
        client, resource = self.client, sel.spec.resource

        async def load() -> str:
            obj = await client.get(resource, sel.name, sel.namespace)
            try:
                events: list[Obj] | None = await ops.events_for(client, obj)
                error = None
            except Exception as e:  # noqa: BLE001 - a cluster without events still describes
                events, error = None, ops.one_line(e)
            return ops.describe_text(obj, events, error)

        from tuik8s.tui.screens.text import TextScreen

        self.app.push_screen(TextScreen(f" Describe  {self._title(sel)}", load))

    def action_yaml(self) -> None:
        sel = self._need()
        if sel is None or not self._connected():
            return
        client, resource = self.client, sel.spec.resource

        async def load() -> str:
            return ops.to_yaml(await client.get(resource, sel.name, sel.namespace))

        from tuik8s.tui.screens.text import TextScreen

        self.app.push_screen(TextScreen(f" YAML  {self._title(sel)}", load, language="yaml"))

    def action_logs(self, previous: bool = False) -> None:
        sel = self._need("logs", what="logs")
        if sel is None or not self._connected():
            return
        client = self.client
        namespace = sel.namespace or "default"

        async def open_logs() -> None:
            pod = sel.obj or await client.get("pods", sel.name, namespace)
            containers = ops.containers_of(pod)
            regular = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or ()]
            from tuik8s.tui.screens.dialogs import ChoiceDialog
            from tuik8s.tui.screens.logs import LogsScreen

            def open_for(container: str | None) -> None:
                if container is not None:
                    self.app.push_screen(LogsScreen(client, namespace, sel.name, container, containers, previous=previous))

            if len(regular) > 1:
                self.app.push_screen(ChoiceDialog(f"Logs of {sel.name}: which container?", containers, regular[0]), open_for)
            else:
                open_for(regular[0] if regular else None)

        async def job() -> str | None:
            await open_logs()
            return None

        self.run_op(job)

    # ---- into the pod: shell, port-forward ---------------------------------------------

    def action_shell_or_scale(self) -> None:
        """`s`, as k9s: a shell on a pod, scale on what scales."""
        sel = self.selection()
        if sel is not None and sel.spec.resource == "pods":
            self.action_shell()
        else:
            self.action_scale()

    def action_shell(self) -> None:
        sel = self._need("logs", what="a shell")
        if sel is None or not self._connected():
            return
        client, namespace = self.client, sel.namespace or "default"

        async def job() -> str | None:
            pod = sel.obj or await client.get("pods", sel.name, namespace)
            phase = (pod.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed"):
                raise ops.OpError(f"cannot exec into a container in a completed pod; current phase is {phase}")
            regular = [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or ()]
            if len(regular) == 1:
                return await self._shell(namespace, sel.name, regular[0])
            from tuik8s.tui.screens.dialogs import ChoiceDialog

            def chosen(container: str | None) -> None:
                if container:
                    self.run_op(lambda: self._shell(namespace, sel.name, container), group="shell", exclusive=True)

            self.app.push_screen(ChoiceDialog(f"Shell in {sel.name}: which container?", regular, regular[0]), chosen)
            return None

        self.run_op(job, group="shell", exclusive=True)

    async def _shell(self, namespace: str, pod: str, container: str) -> str:
        from tuik8s.tui.portforward import PortForwardError, shell_command

        session = self.tui.session
        try:
            command = shell_command(session.context if session is not None else None, namespace, pod, container)
        except PortForwardError as e:
            raise ops.OpError(str(e)) from None
        try:
            with self.app.suspend():
                print(f"tuik8s: shell in pod/{pod} (container {container}), namespace {namespace}; exit returns to the UI",
                      flush=True)
                # blocking on purpose: the app is suspended and the terminal is the shell's
                code = subprocess.call(command)  # noqa: ASYNC221
        except SuspendNotSupported:
            raise ops.OpError("no terminal to hand over for a shell (the UI is not on a terminal)") from None
        except OSError as e:
            raise ops.OpError(f"{command[0]}: {e.strerror}") from None
        return f"shell in pod/{pod} ({container}) ended" + (f" with exit code {code}" if code else "")

    def action_port_forward(self) -> None:
        sel = self.selection()
        if sel is None:
            self.status("nothing selected", error=True)
            return
        if sel.spec.resource not in ("pods", "services") or not self._connected():
            if sel.spec.resource not in ("pods", "services"):
                self.status(f"port-forward does not apply to {sel.spec.title.lower()}: pick a pod or a service", error=True)
            return
        from tuik8s.tui.portforward import PortForwardError, default_ports
        from tuik8s.tui.screens.forwards import PortDialog

        namespace = sel.namespace or "default"
        target = f"{'pod' if sel.spec.resource == 'pods' else 'svc'}/{sel.name}"
        session = self.tui.session
        context = session.context if session is not None else None

        def chosen(ports: tuple[int, int] | None) -> None:
            if ports is None:
                return

            async def start() -> str:
                try:
                    f = await self.tui.port_forwards.start(context, namespace, target, ports[0], ports[1])
                except PortForwardError as e:
                    raise ops.OpError(str(e)) from None
                return f"forwarding {f.url} -> {target}:{f.remote} (:pf lists port-forwards)"

            self.run_op(start, group="port-forward")

        self.app.push_screen(PortDialog(target, default_ports(sel.obj)), chosen)

    def action_forwards(self) -> None:
        from tuik8s.tui.screens.forwards import ForwardsScreen

        self.app.push_screen(ForwardsScreen())

    # ---- changing ------------------------------------------------------------------------

    def action_delete(self) -> None:
        sel = self._need()
        if sel is None or not self._connected():
            return
        from tuik8s.tui.screens.dialogs import ConfirmDialog

        client, resource = self.client, sel.spec.resource
        what = ops.ref(resource, sel.name) + (f" in {sel.namespace}" if sel.namespace else "")

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_op(lambda: ops.delete(client, resource, sel.namespace, sel.name))

        self.app.push_screen(ConfirmDialog(f"Delete {what}?", "Delete"), answered)

    def action_restart(self) -> None:
        sel = self._need("restart", what="restart")
        if sel is None or not self._connected():
            return
        client = self.client
        self.run_op(lambda: ops.restart(client, sel.spec.resource, sel.namespace, sel.name))

    def _replicas(self, sel: Selection) -> int:
        pending = self.tui.pending_scale.get((sel.spec.resource, sel.key))
        if pending is not None:
            return pending
        spec = (sel.obj or {}).get("spec") or {}
        value = spec.get("replicas")
        return 1 if value is None else int(value)

    def action_scale(self) -> None:
        sel = self._need("scale", what="scale")
        if sel is None or not self._connected():
            return
        from tuik8s.tui.screens.dialogs import ScaleDialog

        def chosen(replicas: int | None) -> None:
            if replicas is not None:
                self._scale_to(sel, replicas)

        self.app.push_screen(ScaleDialog(ops.ref(sel.spec.resource, sel.key), self._replicas(sel)), chosen)

    def action_scale_by(self, delta: int) -> None:
        sel = self._need("scale", what="scale")
        if sel is None or not self._connected():
            return
        self._scale_to(sel, max(0, self._replicas(sel) + delta))

    def _scale_to(self, sel: Selection, replicas: int) -> None:
        """Scale with the absolute number, in an exclusive worker per object: pressing `+`
        three times quickly sends +1, +2, +3 from the first count, and only the last
        request matters."""
        key = (sel.spec.resource, sel.key)
        pending = self.tui.pending_scale
        pending[key] = replicas
        client = self.client

        async def job() -> str:
            try:
                return await ops.scale(client, sel.spec.resource, sel.namespace, sel.name, replicas)
            finally:
                if pending.get(key) == replicas:
                    pending.pop(key, None)

        self.run_op(job, group=f"scale {sel.spec.resource} {sel.key}", exclusive=True)

    def action_apply(self) -> None:
        if not self._connected():
            return
        from tuik8s.tui.screens.dialogs import ApplyDialog

        client = self.client
        namespace = self.tui.apply_namespace()

        def chosen(path: Path | None) -> None:
            if path is not None:
                self.run_op(lambda: ops.apply_file(client, path, namespace))

        self.app.push_screen(ApplyDialog(Path.cwd()), chosen)

    def action_edit(self) -> None:
        sel = self._need()
        if sel is None or not self._connected():
            return
        self.run_op(lambda: self._edit(sel), group="edit", exclusive=True)

    async def _edit(self, sel: Selection) -> str | None:
        client, resource = self.client, sel.spec.resource
        obj = await client.get(resource, sel.name, sel.namespace)
        kept_key = (resource, sel.key)
        kept = self.tui.kept_edits.pop(kept_key, None)
        if kept is None:
            text = ops.edit_text(obj)
        elif kept.text is not None:
            text = ops.EDIT_HEADER + f"# {kept.error}\n#\n" + "\n".join(
                line for line in kept.text.splitlines() if not line.lstrip().startswith("#"))
        else:
            text = ops.edit_text(ops.apply_merge(ops.clean(obj), kept.patch), kept.error)
        fd, name = tempfile.mkstemp(prefix=f"tuik8s-edit-{sel.name}-", suffix=".yaml")
        path = Path(name)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            code, err = await self._run_editor(path)
            edited_text = await asyncio.to_thread(path.read_text)
        finally:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        if code != 0:
            return f"Edit cancelled: the editor exited with code {code}{': ' + err if err else ''}"
        if edited_text == text and kept is None:
            return "Edit cancelled, no changes made."
        try:
            edited = ops.parse_edit(edited_text)
        except ops.OpError as e:
            self.tui.kept_edits[kept_key] = KeptEdit(None, edited_text, str(e))
            raise ops.OpError(f"{e} (your edit is kept: press e to reopen it)") from None
        if edited is None:
            return "Edit cancelled, the file was emptied."
        try:
            result = await ops.save_edit(client, resource, obj, edited)
        except (ApiError, ops.OpError) as e:
            patch = ops.merge_diff(ops.clean(obj), ops.clean(edited))
            self.tui.kept_edits[kept_key] = KeptEdit(patch, None, ops.one_line(e))
            raise ops.OpError(f"{ops.one_line(e)} (your edit is kept: press e to reopen it)") from None
        return result or "Edit cancelled, no changes made."

    async def _run_editor(self, path: Path) -> tuple[int, str]:
        command = [*ops.editor_command(), str(path)]
        try:
            with self.app.suspend():
                try:
                    # blocking on purpose: the app is suspended and the terminal is the editor's
                    return subprocess.call(command), ""  # noqa: ASYNC221
                except OSError as e:
                    return 127, f"{command[0]}: {e.strerror}"
        except SuspendNotSupported:
            pass
        # headless (tests, a pipe): no terminal to hand over, run it alongside
        try:
            proc = await asyncio.create_subprocess_exec(
                *command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except OSError as e:
            return 127, f"{command[0]}: {e.strerror}"
        _, err = await proc.communicate()
        return proc.returncode or 0, " ".join(err.decode(errors="replace").split())[:200]

    # ---- nodes ---------------------------------------------------------------------------

    def action_cordon(self, on: bool = True) -> None:
        sel = self._need("node", what="cordon" if on else "uncordon")
        if sel is None or not self._connected():
            return
        client = self.client
        self.run_op(lambda: ops.cordon(client, sel.name, on))

    def action_drain(self) -> None:
        sel = self._need("node", what="drain")
        if sel is None or not self._connected():
            return
        from tuik8s.tui.screens.dialogs import ConfirmDialog

        client = self.client

        def answered(yes: bool | None) -> None:
            if yes:
                self.status(f"draining node/{sel.name}…")
                self.run_op(lambda: ops.drain(client, sel.name), group=f"drain {sel.name}", exclusive=True)

        self.app.push_screen(ConfirmDialog(
            f"Drain node/{sel.name}? It is cordoned, then every pod but DaemonSet pods is evicted "
            "(pods without a controller are gone for good).", "Drain"),
            answered)

    def action_stop_node(self) -> None:
        self._lab("stop")

    def action_start_node(self) -> None:
        self._lab("start")

    def _lab(self, what: str) -> None:
        sel = self._need("node", what="stopping or starting a node")
        if sel is None:
            return
        actions = self.tui.node_actions

        async def job() -> str:
            try:
                if what == "stop":
                    return await actions.stop_node(sel.name, sel.obj)
                return await actions.start_node(sel.name, sel.obj)
            except NodeActionError as e:
                raise ops.OpError(str(e)) from None

        self.run_op(job, group=f"lab {sel.name}")
