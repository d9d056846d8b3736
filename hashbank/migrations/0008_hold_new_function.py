"""The one-statement publish path for a new holder (a new case), on PostgreSQL.

``hashbank_hold_new`` does, in the database, what ``hashbank.services.hashes_hold``
does for a holder that holds nothing yet when every hash is new to the list or
already published: lock the list, insert the new hashes (published), hold them
all, append an ``add`` for each new one with the leaf bytes and leaf hashes the
caller computed (``hashbank.tlog``), store the tree nodes this completes and the
list's new head. It returns the hashes' ids in input order, and how many were
added to the log; when some existed, their stored state too. Anything else (a hash that exists unpublished or disabled, a
log time that would go back) raises, and the caller takes the general path.
See ``hashbank.store.hashes_hold_new_owner``.

Each statement in the function takes a fresh snapshot after the list lock is
held, as the general path's statements do, so nothing another writer committed
before we got the lock is missed.
"""

from django.db import migrations

FUNCTION = r"""
CREATE OR REPLACE FUNCTION hashbank_hold_new(
    p_list bigint, p_holder text, p_now timestamptz, p_timestamp bigint,
    p_algorithms text[], p_values text[], p_qualities int[], p_leaves bytea[], p_digests bytea[],
    OUT hash_ids bigint[], OUT added_count int, OUT qualities int[], OUT published boolean[],
    OUT disabled boolean[], OUT under_review boolean[], OUT origins text[]
) LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
DECLARE
    head_size bigint;
    head_edge jsonb;
    head_last bigint;
    item_count int := cardinality(p_values);
    new_ids bigint[];
    new_leaves bytea[];
    new_digests bytea[];
    all_ok boolean;
    edge bytea[];
    top int;
    node_levels int[] := '{}';
    node_idxs bigint[] := '{}';
    node_hashes bytea[] := '{}';
    h bytea;
    s bigint;
    lvl int;
BEGIN
    SELECT l.log_size, l.tree_edge, l.log_last_timestamp INTO head_size, head_edge, head_last
    FROM hashbank_hashlist l WHERE l.id = p_list FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'hash list % does not exist', p_list USING ERRCODE = 'HB003';
    END IF;
    IF p_timestamp < head_last THEN
        -- Log times never go back: the general path uses the list's newest time.
        RAISE EXCEPTION 'log time would go back' USING ERRCODE = 'HB001';
    END IF;
    IF head_edge ? 'size' AND (head_edge->>'size')::bigint <> head_size THEN
        RAISE EXCEPTION 'list %: stored tree edge does not match the log size', p_list;
    END IF;

    -- The hashes new to the list, stored published (held, and disabled by
    -- nobody), and the holds on them. The holder is new, so its holds are too.
    WITH input AS (
        SELECT * FROM unnest(p_algorithms, p_values, p_qualities, p_leaves, p_digests)
            WITH ORDINALITY AS t(a, v, q, l, d, o)
    ), inserted AS (
        INSERT INTO hashbank_hash AS hh (hash_list_id, algorithm, value, quality, first_seen,
            published, disabled, under_review, changed_at, origin)
        SELECT p_list, i.a, i.v, i.q, p_now, true, false, false, p_now, '' FROM input i ORDER BY i.o
        ON CONFLICT (hash_list_id, algorithm, value) DO NOTHING
        RETURNING hh.id, hh.algorithm, hh.value
    ), matched AS (
        SELECT i.o, n.id, i.l, i.d FROM inserted n JOIN input i ON i.a = n.algorithm AND i.v = n.value
    ), held AS (
        INSERT INTO hashbank_hold (hash_id, holder, origin, active, created_at)
        SELECT m.id, p_holder, '', true, p_now FROM matched m ORDER BY m.o
    )
    SELECT array_agg(m.id ORDER BY m.o), array_agg(m.l ORDER BY m.o), array_agg(m.d ORDER BY m.o)
    INTO new_ids, new_leaves, new_digests
    FROM matched m;
    added_count := coalesce(cardinality(new_ids), 0);

    IF added_count = item_count THEN
        hash_ids := new_ids;
    ELSE
        -- Some exist: each is looked up by its unique key (LIMIT 1 keeps it a
        -- probe of the unique index, whatever plan is cached). They may only
        -- be published and enabled: then holding them changes nothing partners see.
        SELECT array_agg(x.id ORDER BY i.o), array_agg(x.quality ORDER BY i.o),
               array_agg(x.published ORDER BY i.o), array_agg(x.disabled ORDER BY i.o),
               array_agg(x.under_review ORDER BY i.o), array_agg(x.origin::text ORDER BY i.o),
               bool_and(x.published AND NOT x.disabled)
        INTO hash_ids, qualities, published, disabled, under_review, origins, all_ok
        FROM unnest(p_algorithms, p_values) WITH ORDINALITY AS i(a, v, o)
        CROSS JOIN LATERAL (
            SELECT y.id, y.quality, y.published, y.disabled, y.under_review, y.origin
            FROM hashbank_hash y
            WHERE y.hash_list_id = p_list AND y.algorithm = i.a AND y.value = i.v LIMIT 1
        ) x;
        IF NOT all_ok THEN
            RAISE EXCEPTION 'a hash needs the general rule' USING ERRCODE = 'HB002';
        END IF;
        INSERT INTO hashbank_hold (hash_id, holder, origin, active, created_at)
        SELECT u.id, p_holder, '', true, p_now FROM unnest(hash_ids) WITH ORDINALITY AS u(id, o)
        WHERE u.id <> ALL(coalesce(new_ids, '{}')) ORDER BY u.o;
    END IF;

    IF added_count > 0 THEN
        -- RFC 6962: append each leaf hash to the right edge (perfect subtrees,
        -- largest first), keeping every node it completes (hashbank.tlog.RightEdge).
        SELECT coalesce(array_agg(decode(e.x, 'base64') ORDER BY e.o), '{}')
        INTO edge
        FROM jsonb_array_elements_text(coalesce(head_edge->'hashes', '[]'::jsonb))
            WITH ORDINALITY AS e(x, o);
        FOR k IN 1 .. added_count LOOP
            h := new_digests[k];
            s := head_size + k - 1;
            lvl := 0;
            WHILE s & 1 = 1 LOOP
                top := cardinality(edge);
                h := sha256('\x01'::bytea || edge[top] || h);
                edge := edge[1:top - 1];
                lvl := lvl + 1;
                s := s >> 1;
                node_levels := node_levels || lvl;
                node_idxs := node_idxs || s;
                node_hashes := node_hashes || h;
            END LOOP;
            edge := edge || h;
        END LOOP;

        WITH entries AS (
            INSERT INTO hashbank_logentry (hash_list_id, "index", op, hash_id, leaf, leaf_hash,
                "timestamp", removes, redacted)
            SELECT p_list, head_size + u.o - 1, 'add', u.id, u.l, u.d, p_timestamp, NULL, false
            FROM unnest(new_ids, new_leaves, new_digests) WITH ORDINALITY AS u(id, l, d, o)
        ), nodes AS (
            INSERT INTO hashbank_treenode (hash_list_id, level, idx, hash)
            SELECT p_list, n.l, n.i, n.h FROM unnest(node_levels, node_idxs, node_hashes) AS n(l, i, h)
        )
        UPDATE hashbank_hashlist SET
            log_size = head_size + added_count,
            log_last_timestamp = p_timestamp,
            tree_edge = jsonb_build_object(
                'size', head_size + added_count,
                'hashes', (SELECT jsonb_agg(encode(e.x, 'base64') ORDER BY e.o)
                           FROM unnest(edge) WITH ORDINALITY AS e(x, o)))
        WHERE id = p_list;
    END IF;
END
$fn$;
"""

DROP = (
    "DROP FUNCTION IF EXISTS hashbank_hold_new("
    "bigint, text, timestamptz, bigint, text[], text[], int[], bytea[], bytea[]);"
)


def create_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION, params=None)


def drop_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("hashbank", "0007_hash_and_hold_without_fk_triggers"),
    ]

    operations = [migrations.RunPython(create_function, drop_function, elidable=False)]
