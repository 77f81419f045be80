"""The sandbox state machine and the lifecycle rules built on it, on a fake runtime."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from restorebox.auth.principals import Principal
from restorebox.backups import Catalog
from restorebox.errors import SandboxNotFound, TooManySandboxes
from restorebox.lifecycle.manager import SandboxManager
from restorebox.lifecycle.records import CreateRequest
from restorebox.lifecycle.store import Store
from restorebox.lifecycle.transitions import ALLOWED, Transitions, occupies_slot
from restorebox.models import ErrorInfo, Sandbox, Status, utcnow
from restorebox.settings import Settings
from tests.fakes import FakeRuntime

S = Status


def new_record(sandbox_id: str = "s1", status: Status = S.CREATING) -> Sandbox:
    now = utcnow()
    return Sandbox(
        id=sandbox_id,
        status=status,
        postgres_version=17,
        image="img",
        created_at=now,
        expires_at=now + timedelta(hours=1),
        password="secret-password",
    )


@pytest.fixture
def transitions(tmp_path: Path) -> Transitions:
    return Transitions(Store(tmp_path / "state.sqlite3"))


def test_every_status_has_a_row_and_final_states_lead_nowhere() -> None:
    assert set(ALLOWED) == set(Status)
    assert ALLOWED[S.DELETED] == ALLOWED[S.EXPIRED] == frozenset()
    for status, targets in ALLOWED.items():
        assert status not in targets
        if not status.final:
            assert S.DELETING in targets or status == S.DELETING


def test_illegal_moves_leave_the_record_unchanged(transitions: Transitions) -> None:
    transitions.store.put(new_record(status=S.DELETING))
    after = transitions.move("s1", S.READY, ready_at=utcnow())
    assert after.status == S.DELETING
    assert after.ready_at is None
    assert transitions.get("s1").status == S.DELETING


def test_a_final_state_is_final_and_purges_the_password(
    transitions: Transitions, tmp_path: Path
) -> None:
    transitions.store.put(new_record(status=S.READY))
    transitions.move("s1", S.DELETING)
    gone = transitions.move("s1", S.DELETED)
    assert gone.password == ""
    assert transitions.update("s1", progress=None, port=1234).port is None
    assert transitions.move("s1", S.FAILED).status == S.DELETED
    assert transitions.move("s1", S.EXPIRED).status == S.DELETED
    # Purged from the file itself, not only from the current row.
    transitions.store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("state.sqlite3*"))
    assert b"secret-password" not in raw


def test_listeners_see_each_sandbox_s_changes_in_order_with_a_sequence(
    transitions: Transitions,
) -> None:
    """A webhook must never say `deleted` before `ready`: listeners are told under the
    state lock, so a move made while another's listeners run waits for them."""
    import threading

    transitions.store.put(new_record(status=S.PROBING))
    told: list[tuple[Status, int]] = []

    def slow_listener(before: Sandbox, after: Sandbox) -> None:
        if after.status == S.READY:
            time.sleep(0.3)  # a listener that is slow this once
        told.append((after.status, after.seq))

    transitions.subscribe(slow_listener)
    ready = threading.Thread(target=transitions.move, args=("s1", S.READY))
    ready.start()
    time.sleep(0.1)  # READY is written; its listener is running
    transitions.move("s1", S.DELETING)
    ready.join()
    assert [status for status, _ in told] == [S.READY, S.DELETING]
    seqs = [seq for _, seq in told]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 2


def test_what_counts_toward_the_limit() -> None:
    assert occupies_slot(new_record(status=S.READY))
    assert occupies_slot(new_record(status=S.DELETING))
    failed = new_record(status=S.FAILED)
    assert not occupies_slot(failed)
    failed.container_id = "kept"
    assert occupies_slot(failed)
    assert not occupies_slot(new_record(status=S.EXPIRED))


@pytest.fixture
def runtime() -> FakeRuntime:
    return FakeRuntime()


def manager_for(tmp_path: Path, runtime: FakeRuntime, **overrides: object) -> SandboxManager:
    settings = Settings(
        state_dir=tmp_path,
        backups_dir=tmp_path,
        ready_timeout_seconds=0.2,
        api_token="unit-test-token-0123",
        **overrides,  # type: ignore[arg-type]
    )
    return SandboxManager(
        settings, Store(settings.database_file), runtime, Catalog(tmp_path), "inst"
    )


def test_a_failure_is_recorded_before_cleanup_and_cleanup_is_retried_later(
    tmp_path: Path, runtime: FakeRuntime
) -> None:
    manager = manager_for(tmp_path, runtime)
    runtime.fail_remove = 1  # the engine refuses the cleanup once
    sandbox = manager.create(CreateRequest())  # the fake server never accepts a login
    failed = manager.wait(sandbox.id, timeout=30)
    assert failed.status == S.FAILED
    assert failed.error is not None
    assert failed.error.code == "start_timeout"
    assert failed.container_id is not None
    assert runtime.containers
    time.sleep(3.1)  # ...the reconciler's grace period...
    outcome = manager.reconcile()  # ...and a periodic pass (not start-up) repairs it
    assert sandbox.id in outcome["repaired"]
    assert runtime.containers == {}
    assert manager.get(sandbox.id).container_id is None
    manager.shutdown()


def test_kept_failures_count_toward_the_limit(tmp_path: Path, runtime: FakeRuntime) -> None:
    manager = manager_for(tmp_path, runtime, max_sandboxes=1)
    sandbox = manager.create(CreateRequest(keep_on_failure=True))
    failed = manager.wait(sandbox.id, timeout=30)
    assert failed.status == S.FAILED
    assert failed.container_kept
    with pytest.raises(TooManySandboxes, match="failed sandboxes whose container is kept"):
        manager.create(CreateRequest())
    manager.delete(sandbox.id)
    manager.create(CreateRequest())
    manager.shutdown()


def test_reconciler_repairs_unheld_sandboxes_at_any_time(
    tmp_path: Path, runtime: FakeRuntime
) -> None:
    manager = manager_for(tmp_path, runtime)
    stale = new_record("stale", S.RESTORING)
    stale.updated_at = utcnow() - timedelta(seconds=10)
    half_deleted = new_record("half", S.DELETING)
    half_deleted.updated_at = utcnow() - timedelta(seconds=10)
    half_deleted.ends_as = S.EXPIRED
    fresh = new_record("fresh", S.RESTORING)  # just written: maybe a worker is about to hold it
    for record in (stale, half_deleted, fresh):
        manager.store.put(record)
    outcome = manager.reconcile()
    assert manager.get("stale").status == S.FAILED
    assert manager.get("stale").error == ErrorInfo(
        code="interrupted", message="the service stopped while this sandbox was being made"
    )
    assert manager.get("half").status == S.EXPIRED
    assert manager.get("fresh").status == S.RESTORING
    assert outcome["failed"] == ["stale"]
    assert outcome["repaired"] == ["half"]


def test_sandboxes_belong_to_their_principal(tmp_path: Path, runtime: FakeRuntime) -> None:
    manager = manager_for(tmp_path, runtime)
    alice, bob = Principal("alice"), Principal("bob")
    admin = Principal("ops", admin=True)
    mine = manager.create(CreateRequest(owner="alice"))
    assert manager.get(mine.id, alice).owner == "alice"
    with pytest.raises(SandboxNotFound):
        manager.get(mine.id, bob)
    with pytest.raises(SandboxNotFound):
        manager.delete(mine.id, principal=bob)
    with pytest.raises(SandboxNotFound):
        manager.patch(mine.id, 100, None, bob)
    assert [s.id for s in manager.list_all(principal=bob)] == []
    assert [s.id for s in manager.list_all(principal=admin)] == [mine.id]
    manager.delete(mine.id, principal=alice)
    manager.shutdown()


def test_tokens_name_principals(tmp_path: Path) -> None:
    from restorebox.auth.tokens import load_or_create, principal_for

    settings = Settings(
        state_dir=tmp_path,
        api_token="root-token-0123456789",
        api_tokens="alice=alice-token-0123456789,old-root-token-0123456,"  # type: ignore[arg-type]
        "ops=ops-token-0123456789",
        admins="admin,ops",  # type: ignore[arg-type]
    )
    tokens = load_or_create(settings)
    assert principal_for("alice-token-0123456789", tokens) == Principal("alice")
    assert principal_for("ops-token-0123456789", tokens) == Principal("ops", admin=True)
    assert principal_for("root-token-0123456789", tokens) == Principal("admin", admin=True)
    assert principal_for("old-root-token-0123456", tokens) == Principal("admin", admin=True)
    assert principal_for("nope", tokens) is None


def test_a_base64_token_ending_in_equals_is_a_whole_token(tmp_path: Path) -> None:
    """`openssl rand -base64` prints tokens ending in '=': never a principal named by the
    part before it with the token '='."""
    from restorebox.auth.tokens import load_or_create, principal_for

    base64_token = "q83vEjRWeJq8zN7wEjRWeJq8zN7w="
    padded_twice = "AAECAwQFBgcICQoLDA0ODw=="
    settings = Settings(
        state_dir=tmp_path,
        api_tokens=f"{base64_token},{padded_twice}",  # type: ignore[arg-type]
    )
    tokens = load_or_create(settings)
    assert principal_for(base64_token, tokens) == Principal("admin", admin=True)
    assert principal_for(padded_twice, tokens) == Principal("admin", admin=True)
    for guess in ("=", "==", ""):
        assert principal_for(guess, tokens) is None
    assert set(tokens) == {base64_token, padded_twice}


@pytest.mark.parametrize(
    "setting",
    [
        {"api_token": "short"},
        {"api_tokens": "alice=short"},
        {"api_tokens": "ok-token-0123456789,x"},
    ],
)
def test_tokens_shorter_than_16_characters_are_refused_at_start(
    tmp_path: Path, setting: dict[str, str]
) -> None:
    with pytest.raises(ValueError, match="at least 16") as raised:
        Settings(state_dir=tmp_path, **setting)  # type: ignore[arg-type]
    assert "openssl rand" in str(raised.value)


def test_the_password_travels_as_a_file_not_as_configuration(
    tmp_path: Path, runtime: FakeRuntime
) -> None:
    manager = manager_for(tmp_path, runtime)
    sandbox = manager.create(CreateRequest())
    manager.wait(sandbox.id, timeout=30)
    spec = runtime.started[0]
    assert sandbox.password not in "".join(spec.env.values())
    # Not even the file holds the password: only its SCRAM verifier, which PostgreSQL
    # stores as it is and which cannot log in.
    [content] = list(spec.secret_files.values())
    assert sandbox.password.encode() not in content
    assert _verifies(content.decode(), sandbox.password)
    manager.shutdown()


def _verifies(verifier: str, password: str) -> bool:
    """Whether a SCRAM-SHA-256 verifier was made from ``password`` (RFC 7677)."""
    import base64
    import hashlib
    import hmac

    method, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key = keys.split(":")[0]
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(salt), int(iterations)
    )
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    expected = base64.b64encode(hashlib.sha256(client_key).digest()).decode()
    return method == "SCRAM-SHA-256" and hmac.compare_digest(expected, stored_key)
