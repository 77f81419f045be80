"""Labels put on everything restorebox creates in the engine, so it can find its own."""

MANAGED = "restorebox.managed"
INSTANCE = "restorebox.instance"
SANDBOX = "restorebox.sandbox"
EXPIRES = "restorebox.expires"


def for_sandbox(instance: str, sandbox_id: str, expires_at: str) -> dict[str, str]:
    return {MANAGED: "true", INSTANCE: instance, SANDBOX: sandbox_id, EXPIRES: expires_at}
