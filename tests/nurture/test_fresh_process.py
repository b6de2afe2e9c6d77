"""A nurture process whose first work is a classification that schedules touches: the touch's
announcement is built from an unsaved `Touch` before any query has set SQLAlchemy's mappers up,
and reading its fields raised AttributeError ('NoneType' object has no attribute
'supports_population'): the batch failed, and was dead-lettered if nothing set them up before
its retry (found while fixing a race in follow-up)."""

import subprocess
import sys

FIRST_WORK = """
import uuid
from datetime import UTC, datetime
from services.nurture.followup import touch_event
from services.nurture.models import Touch
from shared.events import TOUCH_SCHEDULED
now = datetime.now(UTC)
touch = Touch.model_construct(
    id=uuid.uuid4(), lead_id=uuid.uuid4(), correlation_id=uuid.uuid4(), playbook="warm", step=0,
    channel="email", template="welcome", due_at=now, playbook_version=1, status="scheduled",
)
print(touch_event(TOUCH_SCHEDULED, touch).data["template"])
"""


def test_a_touch_announced_before_any_query_reads_its_fields() -> None:
    done = subprocess.run([sys.executable, "-c", FIRST_WORK], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "welcome"), done.stderr[-2000:]
