-- restorebox stand-in for pg_net: the same queue and response tables and request
-- functions, but no background worker: a sandbox never sends anything.
CREATE SCHEMA IF NOT EXISTS net;

CREATE TYPE net.request_status AS ENUM ('PENDING', 'SUCCESS', 'ERROR');

CREATE TABLE net.http_request_queue (
    id bigserial,
    method text NOT NULL,
    url text NOT NULL,
    headers jsonb NOT NULL,
    body bytea,
    timeout_milliseconds integer NOT NULL
);

CREATE TABLE net._http_response (
    id bigint,
    status_code integer,
    content_type text,
    headers jsonb,
    content text,
    timed_out boolean,
    error_msg text,
    created timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION net._enqueue(method text, url text, params jsonb, headers jsonb,
                             body bytea, timeout_milliseconds integer)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    request_id bigint;
    query text := '';
BEGIN
    SELECT coalesce('?' || string_agg(format('%s=%s', key, value), '&'), '')
      INTO query FROM jsonb_each_text(coalesce(params, '{}'));
    INSERT INTO net.http_request_queue (method, url, headers, body, timeout_milliseconds)
    VALUES (method, url || query, coalesce(headers, '{}'), body, timeout_milliseconds)
    RETURNING id INTO request_id;
    INSERT INTO net._http_response (id, timed_out, error_msg)
    VALUES (request_id, false, 'not sent: restorebox sandboxes have no network');
    RETURN request_id;
END $$;

CREATE FUNCTION net.http_get(url text, params jsonb DEFAULT '{}', headers jsonb DEFAULT '{}',
                             timeout_milliseconds integer DEFAULT 5000)
RETURNS bigint LANGUAGE sql AS $$
    SELECT net._enqueue('GET', url, params, headers, NULL, timeout_milliseconds)
$$;

CREATE FUNCTION net.http_post(url text, body jsonb DEFAULT '{}', params jsonb DEFAULT '{}',
                              headers jsonb DEFAULT '{"Content-Type": "application/json"}',
                              timeout_milliseconds integer DEFAULT 5000)
RETURNS bigint LANGUAGE sql AS $$
    SELECT net._enqueue('POST', url, params, headers, convert_to(body::text, 'UTF8'),
                        timeout_milliseconds)
$$;

CREATE FUNCTION net.http_delete(url text, params jsonb DEFAULT '{}', headers jsonb DEFAULT '{}',
                                timeout_milliseconds integer DEFAULT 5000)
RETURNS bigint LANGUAGE sql AS $$
    SELECT net._enqueue('DELETE', url, params, headers, NULL, timeout_milliseconds)
$$;
