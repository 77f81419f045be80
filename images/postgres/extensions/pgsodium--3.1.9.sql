-- restorebox stand-in for pgsodium: the key table (a configuration table, so dumps carry
-- its rows) and its types, so dumps that reference keys load. No libsodium: encrypting
-- raises a clear error, decrypting yields NULL.
CREATE TYPE pgsodium.key_status AS ENUM ('default', 'valid', 'invalid', 'expired');
CREATE TYPE pgsodium.key_type AS ENUM (
    'aead-ietf', 'aead-det', 'hmacsha512', 'hmacsha256', 'auth', 'shorthash',
    'generichash', 'kdf', 'secretbox', 'secretstream', 'stream_xchacha20');

CREATE TABLE pgsodium.key (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    status pgsodium.key_status DEFAULT 'valid',
    created timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    expires timestamptz,
    key_type pgsodium.key_type,
    key_id bigserial,
    key_context bytea DEFAULT '\x7067736f6469756d',
    name text UNIQUE,
    associated_data text DEFAULT 'associated',
    raw_key bytea,
    raw_key_nonce bytea,
    parent_key uuid REFERENCES pgsodium.key (id),
    comment text,
    user_data text
);
SELECT pg_catalog.pg_extension_config_dump('pgsodium.key', '');

CREATE VIEW pgsodium.valid_key AS
SELECT id, name, status, key_type, key_id, key_context, created, expires, associated_data
FROM pgsodium.key
WHERE status IN ('valid', 'default') AND (expires IS NULL OR expires > now());

CREATE FUNCTION pgsodium.create_key(key_type pgsodium.key_type DEFAULT 'aead-det',
                                    name text DEFAULT NULL, raw_key bytea DEFAULT NULL,
                                    raw_key_nonce bytea DEFAULT NULL, parent_key uuid DEFAULT NULL,
                                    key_context bytea DEFAULT '\x7067736f6469756d',
                                    expires timestamptz DEFAULT NULL,
                                    associated_data text DEFAULT '')
RETURNS pgsodium.valid_key LANGUAGE sql AS $$
    INSERT INTO pgsodium.key (key_type, name, raw_key, raw_key_nonce, parent_key, key_context,
                              expires, associated_data)
    VALUES (key_type, name, raw_key, raw_key_nonce, parent_key, key_context, expires,
            associated_data)
    RETURNING id, name, status, key_type, key_id, key_context, created, expires, associated_data
$$;

CREATE FUNCTION pgsodium._unavailable() RETURNS bytea LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'pgsodium cryptography is not available in a restorebox sandbox';
END $$;

CREATE FUNCTION pgsodium.crypto_aead_det_noncegen() RETURNS bytea
LANGUAGE sql AS $$ SELECT decode(md5(random()::text || clock_timestamp()::text), 'hex') $$;
CREATE FUNCTION pgsodium.crypto_aead_det_encrypt(message bytea, additional bytea, key_uuid uuid,
                                                 nonce bytea DEFAULT NULL)
RETURNS bytea LANGUAGE sql AS $$ SELECT pgsodium._unavailable() $$;
-- Decryption yields NULL, not an error: views over encrypted columns (vault's
-- decrypted_secrets as older dumps define it) still read, with nothing decrypted.
CREATE FUNCTION pgsodium.crypto_aead_det_decrypt(message bytea, additional bytea, key_uuid uuid,
                                                 nonce bytea DEFAULT NULL)
RETURNS bytea LANGUAGE sql AS $$ SELECT NULL::bytea $$;
