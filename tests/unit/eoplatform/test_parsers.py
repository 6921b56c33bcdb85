"""JSON nested deeper than Python's parser follows is a 400, not a 500 (issue 10 §11)."""

import pytest

pytestmark = pytest.mark.django_db


def test_deeply_nested_json_is_a_400(client_as, annotator):
    body = "[" * 100_000 + "]" * 100_000
    response = client_as(annotator).post("/api/v1/votes/", body, content_type="application/json")
    assert response.status_code == 400 and "nested too deeply" in response.json()["detail"]
