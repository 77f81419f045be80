-- restorebox stand-in for pgjwt, written from RFC 7515/7519: base64url encoding and
-- HMAC-SHA2 signatures through pgcrypto. Objects go to the schema CREATE EXTENSION names.
CREATE FUNCTION @extschema@.url_encode(data bytea) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT translate(rtrim(encode(data, 'base64'), '='), E'+/\n', '-_')
$$;

CREATE FUNCTION @extschema@.url_decode(data text) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT decode(
        translate(data, '-_', '+/') || repeat('=', (4 - length(data) % 4) % 4), 'base64')
$$;

-- hmac() is pgcrypto's, wherever pgcrypto is installed: name its schema in the body so
-- callers' search_path does not matter.
DO $do$
DECLARE
    crypto text := (SELECT extnamespace::regnamespace::text FROM pg_extension
                    WHERE extname = 'pgcrypto');
BEGIN
    EXECUTE format($f$
        CREATE FUNCTION @extschema@.algorithm_sign(signables text, secret text, algorithm text)
        RETURNS text LANGUAGE sql IMMUTABLE AS $$
            SELECT @extschema@.url_encode(%s.hmac(signables, secret,
                CASE algorithm WHEN 'HS256' THEN 'sha256' WHEN 'HS384' THEN 'sha384'
                               WHEN 'HS512' THEN 'sha512' END))
        $$ $f$, crypto);
END
$do$;

CREATE FUNCTION @extschema@.sign(payload json, secret text, algorithm text DEFAULT 'HS256')
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    WITH header AS (
        SELECT @extschema@.url_encode(convert_to(
            json_build_object('alg', algorithm, 'typ', 'JWT')::text, 'utf8')) AS data
    ), body AS (
        SELECT @extschema@.url_encode(convert_to(payload::text, 'utf8')) AS data
    ), signables AS (
        SELECT header.data || '.' || body.data AS data FROM header, body
    )
    SELECT signables.data || '.' || @extschema@.algorithm_sign(signables.data, secret, algorithm)
    FROM signables
$$;

CREATE FUNCTION @extschema@.try_cast_double(inp text) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN inp::double precision;
EXCEPTION WHEN OTHERS THEN
    RETURN NULL;
END $$;

CREATE FUNCTION @extschema@.verify(token text, secret text, algorithm text DEFAULT 'HS256')
RETURNS TABLE (header json, payload json, valid boolean)
LANGUAGE sql IMMUTABLE AS $$
    SELECT
        jwt.header,
        jwt.payload,
        jwt.signature_ok
        AND coalesce(to_timestamp(@extschema@.try_cast_double(jwt.payload->>'exp')) > now(), true)
        AND coalesce(to_timestamp(@extschema@.try_cast_double(jwt.payload->>'nbf')) <= now(), true)
        AS valid
    FROM (
        SELECT
            convert_from(@extschema@.url_decode(r[1]), 'utf8')::json AS header,
            convert_from(@extschema@.url_decode(r[2]), 'utf8')::json AS payload,
            r[3] = @extschema@.algorithm_sign(r[1] || '.' || r[2], secret, algorithm)
                AS signature_ok
        FROM regexp_split_to_array(token, '\.') AS r
    ) AS jwt
$$;
