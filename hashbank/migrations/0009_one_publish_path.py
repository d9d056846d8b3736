"""One publish path, in Python; holders as a kind and an id; foreign keys checked again.

- Drops ``hashbank_hold_new`` (migration 0008): the publish rule and the log
  append now exist once, in ``hashbank.services`` and ``hashbank.log``.
- ``Hold.holder`` (``"case:42"``, ``"peer:3"``) becomes ``holder_kind`` and
  ``holder_id``; existing rows are converted.
- Restores the foreign-key constraints migrations 0006 and 0007 removed
  (BENCHMARKS.md has what they cost).
"""

import django.db.models.deletion
from django.db import migrations, models

DROP_FUNCTION = (
    "DROP FUNCTION IF EXISTS hashbank_hold_new("
    "bigint, text, timestamptz, bigint, text[], text[], int[], bytea[], bytea[]);"
)


def drop_function(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_FUNCTION, params=None)


def split_holders(apps, schema_editor):
    Hold = apps.get_model("hashbank", "Hold")
    for hold in Hold.objects.all().only("pk", "holder"):
        kind, _, pk = hold.holder.partition(":")
        if kind not in ("case", "peer") or not pk.isdigit():
            raise ValueError(f"hold {hold.pk}: holder {hold.holder!r} is not <case|peer>:<id>")
        Hold.objects.filter(pk=hold.pk).update(holder_kind=kind, holder_id=int(pk))


def join_holders(apps, schema_editor):
    Hold = apps.get_model("hashbank", "Hold")
    for hold in Hold.objects.all().only("pk", "holder_kind", "holder_id"):
        Hold.objects.filter(pk=hold.pk).update(holder=f"{hold.holder_kind}:{hold.holder_id}")


class Migration(migrations.Migration):
    dependencies = [
        ("hashbank", "0008_hold_new_function"),
    ]

    operations = [
        migrations.RunPython(drop_function, migrations.RunPython.noop, elidable=False),
        migrations.AddField(
            model_name="hold",
            name="holder_kind",
            field=models.CharField(
                choices=[("case", "Case"), ("peer", "Peer")], max_length=8, default=""
            ),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="hold",
            name="holder_id",
            field=models.BigIntegerField(null=True),
        ),
        migrations.RunPython(split_holders, join_holders),
        migrations.RemoveConstraint(model_name="hold", name="hold_unique_per_holder"),
        migrations.RemoveIndex(model_name="hold", name="hashbank_ho_holder_13c116_idx"),
        migrations.RemoveField(model_name="hold", name="holder"),
        migrations.AlterField(
            model_name="hold",
            name="holder_id",
            field=models.BigIntegerField(),
        ),
        migrations.AddConstraint(
            model_name="hold",
            constraint=models.UniqueConstraint(
                fields=("hash", "holder_kind", "holder_id"), name="hold_unique_per_holder"
            ),
        ),
        migrations.AddIndex(
            model_name="hold",
            index=models.Index(fields=["holder_kind", "holder_id"], name="hold_by_holder"),
        ),
        migrations.AlterField(
            model_name="hash",
            name="hash_list",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="hashes",
                to="hashbank.hashlist",
            ),
        ),
        migrations.AlterField(
            model_name="hold",
            name="hash",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="holds",
                to="hashbank.hash",
            ),
        ),
        migrations.AlterField(
            model_name="logentry",
            name="hash",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="log_entries",
                to="hashbank.hash",
            ),
        ),
        migrations.AlterField(
            model_name="logentry",
            name="hash_list",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="log",
                to="hashbank.hashlist",
            ),
        ),
        migrations.AlterField(
            model_name="treenode",
            name="hash_list",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="hashbank.hashlist",
            ),
        ),
    ]
