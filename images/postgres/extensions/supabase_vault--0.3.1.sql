-- restorebox stand-in for supabase_vault. vault.secrets has the columns dumps carry, so
-- a dump's secrets load (still encrypted: the key never leaves the platform). Secrets
-- made in the sandbox are kept as given (nonce NULL) and shown decrypted; restored ones
-- show NULL, since nothing here can decrypt them.
CREATE TABLE vault.secrets (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text,
    description text NOT NULL DEFAULT '',
    secret text NOT NULL,
    key_id uuid,
    nonce bytea,
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE UNIQUE INDEX secrets_name_idx ON vault.secrets (name) WHERE name IS NOT NULL;
SELECT pg_catalog.pg_extension_config_dump('vault.secrets', '');

CREATE VIEW vault.decrypted_secrets AS
SELECT id, name, description, secret,
       CASE WHEN nonce IS NULL THEN secret END AS decrypted_secret,
       key_id, nonce, created_at, updated_at
FROM vault.secrets;

CREATE FUNCTION vault.create_secret(new_secret text, new_name text DEFAULT NULL,
                                    new_description text DEFAULT '', new_key_id uuid DEFAULT NULL)
RETURNS uuid LANGUAGE sql AS $$
    INSERT INTO vault.secrets (secret, name, description, key_id)
    VALUES (new_secret, new_name, new_description, new_key_id) RETURNING id
$$;

CREATE FUNCTION vault.update_secret(secret_id uuid, new_secret text DEFAULT NULL,
                                    new_name text DEFAULT NULL, new_description text DEFAULT NULL,
                                    new_key_id uuid DEFAULT NULL)
RETURNS void LANGUAGE sql AS $$
    UPDATE vault.secrets SET
        secret = coalesce(new_secret, secret),
        nonce = CASE WHEN new_secret IS NULL THEN nonce END,
        name = coalesce(new_name, name),
        description = coalesce(new_description, description),
        key_id = coalesce(new_key_id, key_id),
        updated_at = CURRENT_TIMESTAMP
    WHERE id = secret_id
$$;
