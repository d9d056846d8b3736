from django.db import migrations

LISTS = [
    {
        "slug": "adult",
        "name": "Adult (StopNCII-style)",
        "description": "The person in the image was 18 or older when it was taken.",
        "requires_explicit_grant": False,
    },
    {
        "slug": "minor",
        "name": "Minor (Take It Down-style)",
        "description": "The person in the image was under 18 when it was taken, whatever their age now.",
        "requires_explicit_grant": True,
    },
]


def create_lists(apps, schema_editor):
    HashList = apps.get_model("hashbank", "HashList")
    for item in LISTS:
        HashList.objects.update_or_create(slug=item["slug"], defaults=item)


class Migration(migrations.Migration):
    dependencies = [("hashbank", "0001_initial")]
    operations = [migrations.RunPython(create_lists, migrations.RunPython.noop)]
