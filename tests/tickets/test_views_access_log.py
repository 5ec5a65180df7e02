"""The personal-data access log: operator admins list and export it; the export is logged too."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from crm.models import PersonalDataAccess
from tests.factories import DonorFactory

pytestmark = pytest.mark.django_db


def test_admin_lists_and_exports_the_log(login, operator_admin, agent_a, city_a):
    donor = DonorFactory(municipality=city_a)
    login(agent_a).get(reverse("donor_detail", args=[donor.id]))
    client = login(operator_admin)
    page = client.get(reverse("access_log"), {"user": "agent_a"}).content.decode()
    assert "agent_a" in page and reverse("donor_detail", args=[donor.id]) in page

    response = client.get(reverse("access_log_export"), {"type": "donor"})
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    content = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(content)))
    assert rows[0][:4] == ["日時", "利用者", "操作", "対象"]
    assert rows[1][1:5] == ["agent_a", "閲覧", "donor", str(donor.id)]
    export = PersonalDataAccess.objects.get(action="export")
    assert export.user == operator_admin and export.record_type == "access_log.csv"
    assert export.detail == {"filters": {"type": "donor"}}


@pytest.mark.parametrize("who", ["agent_a", "supervisor", "city_official_a", "city_official_b"])
def test_only_operator_admins(login, request, who):
    client = login(request.getfixturevalue(who))
    assert client.get(reverse("access_log")).status_code == 403
    assert client.get(reverse("access_log_export")).status_code == 403
    assert not PersonalDataAccess.objects.filter(action="export").exists()
