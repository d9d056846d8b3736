"""The one-statement publish path for a new holder (a new case), on PostgreSQL.

``hashbank_hold_new`` does, in the database, what ``hashbank.services.hashes_hold``
does for a holder that holds nothing yet when every hash is new to the list or
already published: lock the list, insert the new hashes (published), hold them
all, append an ``add`` for each new one with the leaf bytes and leaf hashes the
caller computed (``hashbank.tlog``), store the tree nodes this completes and the
list's new head. Anything else (a hash that exists unpublished or disabled, a
log time that would go back) raises, and the caller takes the general path.
See ``hashbank.store.hashes_hold_new_owner``.

Each statement in the function takes a fresh snapshot after the list lock is
held, as the general path's statements do, so nothing another writer committed
before we got the lock is missed.
"""

from django.db import migrations

FUNCTION = r"""
CREATE OR REPLACE FUNCTION hashbank_hold_new(
    p_list bigint, p_holder text, p_now timestamptz, p_timestamp bigint, p_items jsonb
) RETURNS TABLE (ord int, hash_id bigint, quality int, published boolean, disabled boolean,
                 under_review boolean, origin text, added boolean)
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_column
DECLARE
    head_size bigint;
    head_edge jsonb;
    head_last bigint;
    item_count int := jsonb_array_length(p_items);
    new_ords int[];
    new_ids bigint[];
    new_qualities int[];
    new_leaves bytea[];
    new_digests bytea[];
    all_ids bigint[];
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

    -- The hashes new to the list, stored published (held, and disabled by nobody).
    WITH input AS (
        SELECT * FROM jsonb_to_recordset(p_items) AS t(o int, a text, v text, q int, l text, d text)
    ), inserted AS (
        INSERT INTO hashbank_hash AS hh (hash_list_id, algorithm, value, quality, first_seen,
            published, disabled, under_review, changed_at, origin)
        SELECT p_list, i.a, i.v, i.q, p_now, true, false, false, p_now, '' FROM input i ORDER BY i.o
        ON CONFLICT (hash_list_id, algorithm, value) DO NOTHING
        RETURNING hh.id, hh.algorithm, hh.value
    )
    SELECT array_agg(i.o ORDER BY i.o), array_agg(n.id ORDER BY i.o),
           array_agg(i.q ORDER BY i.o), array_agg(decode(i.l, 'hex') ORDER BY i.o),
           array_agg(decode(i.d, 'hex') ORDER BY i.o)
    INTO new_ords, new_ids, new_qualities, new_leaves, new_digests
    FROM inserted n JOIN input i ON i.a = n.algorithm AND i.v = n.value;

    IF coalesce(cardinality(new_ids), 0) = item_count THEN
        all_ids := new_ids;
    ELSE
        -- Some exist: each is looked up by its unique key (LIMIT 1 keeps it a
        -- probe of the unique index, whatever plan is cached). They may only
        -- be published and enabled: then holding them changes nothing partners see.
        SELECT array_agg(h2.id ORDER BY i.o), bool_and(h2.published AND NOT h2.disabled)
        INTO all_ids, all_ok
        FROM jsonb_to_recordset(p_items) AS i(o int, a text, v text)
        CROSS JOIN LATERAL (
            SELECT x.id, x.published, x.disabled FROM hashbank_hash x
            WHERE x.hash_list_id = p_list AND x.algorithm = i.a AND x.value = i.v LIMIT 1
        ) h2;
        IF NOT all_ok THEN
            RAISE EXCEPTION 'a hash needs the general rule' USING ERRCODE = 'HB002';
        END IF;
    END IF;

    -- The holder is new, so every hold is new too.
    INSERT INTO hashbank_hold (hash_id, holder, origin, active, created_at)
    SELECT u.id, p_holder, '', true, p_now
    FROM unnest(all_ids) WITH ORDINALITY AS u(id, o) ORDER BY u.o;

    IF coalesce(cardinality(new_ids), 0) > 0 THEN
        -- RFC 6962: append each leaf hash to the right edge (perfect subtrees,
        -- largest first), keeping every node it completes (hashbank.tlog.RightEdge).
        SELECT coalesce(array_agg(decode(e.x, 'base64') ORDER BY e.o), '{}')
        INTO edge
        FROM jsonb_array_elements_text(coalesce(head_edge->'hashes', '[]'::jsonb))
            WITH ORDINALITY AS e(x, o);
        FOR k IN 1 .. cardinality(new_digests) LOOP
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

        INSERT INTO hashbank_logentry (hash_list_id, "index", op, hash_id, leaf, leaf_hash,
            "timestamp", removes, redacted)
        SELECT p_list, head_size + u.o - 1, 'add', u.id, new_leaves[u.o], new_digests[u.o],
            p_timestamp, NULL, false
        FROM unnest(new_ids) WITH ORDINALITY AS u(id, o);
        INSERT INTO hashbank_treenode (hash_list_id, level, idx, hash)
        SELECT p_list, n.l, n.i, n.h FROM unnest(node_levels, node_idxs, node_hashes) AS n(l, i, h);
        UPDATE hashbank_hashlist SET
            log_size = head_size + cardinality(new_ids),
            log_last_timestamp = p_timestamp,
            tree_edge = jsonb_build_object(
                'size', head_size + cardinality(new_ids),
                'hashes', (SELECT jsonb_agg(encode(e.x, 'base64') ORDER BY e.o)
                           FROM unnest(edge) WITH ORDINALITY AS e(x, o)))
        WHERE id = p_list;
    END IF;

    IF coalesce(cardinality(new_ids), 0) = item_count THEN
        RETURN QUERY SELECT u.o, u.id, u.q, true, false, false, ''::text, true
        FROM unnest(new_ords, new_ids, new_qualities) AS u(o, id, q);
    ELSE
        RETURN QUERY SELECT i.o, x.id, x.quality::int, x.published, x.disabled, x.under_review,
            x.origin::text, x.id = ANY(coalesce(new_ids, '{}'))
        FROM jsonb_to_recordset(p_items) AS i(o int, a text, v text)
        CROSS JOIN LATERAL (
            SELECT y.* FROM hashbank_hash y
            WHERE y.hash_list_id = p_list AND y.algorithm = i.a AND y.value = i.v LIMIT 1
        ) x;
    END IF;
END
$fn$;
"""

DROP = "DROP FUNCTION IF EXISTS hashbank_hold_new(bigint, text, timestamptz, bigint, jsonb);"


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
