# API tokens stored hashed (django-rest-knox), and every token of Django REST framework's
# authtoken app, whose keys it stored in plain text, turned into one of them.

import datetime
import hashlib

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.utils.dateparse import parse_datetime

OLD_TABLE = "authtoken_token"
OLD_APP = "authtoken"
# knox's TOKEN_KEY_LENGTH: the first characters of a secret, kept to find its row.
TOKEN_KEY_LENGTH = 15


def knox_digest(secret: str) -> str:
    """The digest knox stores and compares: SHA-512 of the secret, in hex (knox's
    SECURE_HASH_ALGORITHM, whose default the settings keep)."""
    return hashlib.sha512(secret.encode("utf-8")).hexdigest()


def _aware(value) -> datetime.datetime:
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is None:
        return datetime.datetime.now(datetime.UTC)
    return value if value.tzinfo is not None else value.replace(tzinfo=datetime.UTC)


def hash_drf_tokens(apps, schema_editor):
    """Each key of the old authtoken table becomes an API token with the same secret (its
    digest stored), named "migrated", that never expires and keeps its creation date; then
    the old table goes, with what Django kept of the app that made it (its migrations'
    records, its content types and permissions), since that app is no longer installed. The
    table is read with SQL: the app, and so its model, is gone. Nothing to do on a database
    that never had it."""
    connection = schema_editor.connection
    if OLD_TABLE not in connection.introspection.table_names():
        return
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {quote('key')}, {quote('user_id')}, {quote('created')} FROM {quote(OLD_TABLE)}"
        )
        old = cursor.fetchall()
    ApiToken = apps.get_model("annotation", "ApiToken")
    for key, user_id, created in old:
        row = ApiToken(
            digest=knox_digest(key), token_key=key[:TOKEN_KEY_LENGTH], user_id=user_id,
            name="migrated", expiry=None,
        )
        row.save()
        # `created` is set on saving; the token was made back then.
        ApiToken.objects.filter(pk=row.pk).update(created=_aware(created))
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {quote(OLD_TABLE)}")
        cursor.execute(f"DELETE FROM {quote('django_migrations')} WHERE app = %s", [OLD_APP])
    apps.get_model("contenttypes", "ContentType").objects.filter(app_label=OLD_APP).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('annotation', '0011_activity_log'),
        ('contenttypes', '0002_remove_content_type_name'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ApiToken',
            fields=[
                ('token_key', models.CharField(db_index=True, max_length=25)),
                ('created', models.DateTimeField(auto_now_add=True)),
                ('expiry', models.DateTimeField(blank=True, null=True)),
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('digest', models.CharField(max_length=128, unique=True)),
                ('name', models.CharField(help_text='What the token is for, e.g. ci.', max_length=64)),
                ('last_used_at', models.DateTimeField(blank=True, null=True)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='auth_token_set', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'API token',
            },
        ),
        # Backwards, the hashed tokens cannot become plain keys again: they are dropped with
        # the table.
        migrations.RunPython(hash_drf_tokens, migrations.RunPython.noop),
    ]
