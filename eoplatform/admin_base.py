"""What the platform's admin pages share: read-only registrations for the rows that services keep in step (votes
with the imagettes' counts, consensus with settled labels, immutable snapshots, predictions, exports, jobs), and
how a class bitmask reads there. Django's admin escapes every value it shows; the helpers here return plain text
(never mark_safe), so that stays true."""

from __future__ import annotations

from django.contrib import admin

from annotations.wv_classes import WV_CLASSES


class ReadOnlyAdmin(admin.ModelAdmin):
    """Seen and searched in /admin/, never added, changed or deleted there: those rows are written by services
    that keep other rows in step (an edit here would bypass them). Pages stay fast on 100 000 rows: no full
    count, foreign keys as raw ids or joined in the list query, 50 rows a page."""

    show_full_result_count = False
    list_per_page = 50

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def mask_text(mask: int | None) -> str:
    """A class bitmask as the class slugs it names, e.g. 'sea_ice; icebergs' ('' for none)."""
    if not mask:
        return ""
    return "; ".join(c.slug for c in WV_CLASSES if mask >> c.index & 1)
