-- restorebox stand-in for pg_graphql. Dumps reference graphql.resolve (through
-- graphql_public.graphql) and the schema; queries get a clear error.
CREATE FUNCTION graphql.resolve(
    query text,
    variables jsonb DEFAULT '{}',
    "operationName" text DEFAULT NULL,
    extensions jsonb DEFAULT NULL
) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'pg_graphql is not available in a restorebox sandbox'
        USING HINT = 'query the tables directly; the sandbox has a stand-in for pg_graphql';
END $$;

CREATE FUNCTION graphql.comment_directive(comment_ text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$ SELECT NULL::jsonb $$;

CREATE FUNCTION graphql.increment_schema_version() RETURNS event_trigger
LANGUAGE plpgsql AS $$ BEGIN END $$;

CREATE FUNCTION graphql.get_schema_version() RETURNS int
LANGUAGE sql STABLE AS $$ SELECT 1 $$;
