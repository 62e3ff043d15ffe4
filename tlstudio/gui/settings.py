"""The studio's settings store (recent folders and projects, window geometry, dark mode).

`QSettings()` with the application's names, not `QSettings(org, app)`: the latter always uses the
native store, so a `QSettings.setDefaultFormat` + `setPath` redirect (how tests keep away from the
user's real settings) would silently not apply.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QSettings

ORGANIZATION = "tlstudio"
APPLICATION = "Transfer Learning Studio"


def settings() -> QSettings:
    QCoreApplication.setOrganizationName(ORGANIZATION)
    QCoreApplication.setApplicationName(APPLICATION)
    return QSettings()
