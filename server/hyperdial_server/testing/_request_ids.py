"""Request ids: retried calls answered once, other payloads refused."""

from __future__ import annotations

import pytest

from hyperdial_server.core.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from hyperdial_server.core.trial import Trial, TrialState
from hyperdial_server.store import Store
from hyperdial_server.testing._helpers import (
    ContractBase,
    StoreHarness,
    claim,
    commit,
    complete,
    enqueue,
    frid,
    lease_study,
    make_record,
    mismatch,
    rid,
)


class RequestIdContract(ContractBase):
    """Request ids: a retry changes nothing and gets the first answer, an ask in progress
    keeps its retries out, and a retry with another payload (fingerprint) is refused.

    The test of fingerprints makes a one-step ask too, so it skips for a store whose
    ``one_step_asks`` is false.
    """

    def test_a_retried_ask_gets_the_first_answer_and_changes_nothing(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            await enqueue(s, namespace, rec)  # 1
            first = await claim(s, namespace, rec, 3, request_id=rid("ask-1", "a1"), now=1.0)
            trials = await commit(s, namespace, rec, first, request_id=rid("ask-1", "a1"), now=1.0)
            handed = [1] + [t.number for t in trials]
            assert handed == [1, 2, 3]
            await complete(s, namespace, rec, 2, 0.5)
            for attempt in ("a1", "a2"):
                again = await claim(s, namespace, rec, 3, request_id=rid("ask-1", attempt), now=2.0)
                assert again.replayed and again.indices == [] and again.token == ""
                assert [t.number for t in again.trials] == handed
                assert [t.state for t in again.trials] == [
                    TrialState.RUNNING,
                    TrialState.COMPLETED,  # as the trials are now
                    TrialState.RUNNING,
                ]
            assert (await claim(s, namespace, rec, 1, now=3.0)).indices == [2]
            assert (await s.get_study(namespace, rec.study_id)).trial_count == 3
            # An ask answered from the queue alone is recorded by the claim.
            await enqueue(s, namespace, rec)  # 4
            only = await claim(s, namespace, rec, 1, request_id=rid("ask-2", "b1"), now=4.0)
            assert [t.number for t in only.trials] == [4] and not only.replayed
            again = await claim(s, namespace, rec, 1, request_id=rid("ask-2", "b2"), now=5.0)
            assert again.replayed and [t.number for t in again.trials] == [4]
            # Past its time (ttl 100) the id is new again.
            fresh = await claim(s, namespace, rec, 1, request_id=rid("ask-2", "b3"), now=200.0)
            assert not fresh.replayed

        store.run(body)

    def test_a_request_id_serves_one_kind_of_call(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            first = await claim(s, namespace, rec, 1, request_id=rid("ask-1", "a1"), now=1.0)
            await commit(s, namespace, rec, first, request_id=rid("ask-1", "a1"), now=1.0)
            with pytest.raises(InvalidArgument) as e:
                await s.complete_trial(
                    namespace,
                    rec.study_id,
                    3,
                    values={"loss": 1.0},
                    failure_reason=None,
                    metadata={},
                    now=6.0,
                    request_id=rid("ask-1"),
                )
            assert e.value.reason == "REQUEST_ID_REUSED"
            assert "SuggestTrials" in e.value.message
            trial = Trial(0, TrialState.WAITING, {"lr": 0.5})
            with pytest.raises(InvalidArgument) as e:
                await s.create_trial(
                    namespace, rec.study_id, trial, request_id=rid("ask-1"), now=7.0
                )
            assert e.value.reason == "REQUEST_ID_REUSED"

        store.run(body)

    def test_a_concurrent_retry_of_an_ask_in_progress_is_refused_until_its_claim_expires(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record()
            await s.create_study(namespace, rec)
            first = await claim(s, namespace, rec, 2, request_id=rid("r", "one"), now=0.0, ttl=10.0)
            with pytest.raises(Unavailable) as e:
                await claim(s, namespace, rec, 2, request_id=rid("r", "two"), now=5.0)
            assert e.value.reason == "REQUEST_IN_PROGRESS"
            # The first execution's own next step is not refused.
            assert (await claim(s, namespace, rec, 1, request_id=rid("r", "one"), now=6.0)).indices
            # Past the claim's deadline a retry takes the ask over; the first may not finish it.
            over = await claim(s, namespace, rec, 2, request_id=rid("r", "two"), now=30.0)
            assert over.indices
            with pytest.raises(Unavailable) as e:
                await commit(s, namespace, rec, first, request_id=rid("r", "one"), now=31.0)
            assert e.value.reason == "REQUEST_IN_PROGRESS"
            done = await commit(s, namespace, rec, over, request_id=rid("r", "two"), now=31.0)
            replay = await claim(s, namespace, rec, 2, request_id=rid("r", "three"), now=32.0)
            assert [t.number for t in replay.trials] == [t.number for t in done]

        store.run(body)

    def test_a_retried_tell_returns_the_trial_and_changes_nothing(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec, _ = await lease_study(s, namespace, 2)

            async def tell(number: int, loss: float, request: str, now: float) -> Trial:
                return await s.complete_trial(
                    namespace,
                    rec.study_id,
                    number,
                    values={"loss": loss, "acc": 0.0},
                    failure_reason=None,
                    metadata={"loss": str(loss)},
                    now=now,
                    score=loss,
                    request_id=rid(request),
                )

            first = await tell(1, 0.5, "t1", 1.0)
            again = await tell(1, 0.9, "t1", 2.0)
            assert again == first == await s.get_trial(namespace, rec.study_id, 1)
            assert again.values == {"loss": 0.5, "acc": 0.0} and again.complete_time == 1.0
            with pytest.raises(InvalidArgument) as e:
                await tell(2, 0.5, "t1", 3.0)  # the id of a tell of trial 1
            assert (e.value.reason, e.value.field) == ("REQUEST_ID_REUSED", "request_id")
            with pytest.raises(FailedPrecondition):
                await tell(1, 0.5, "t1", 500.0)  # past its time the id is forgotten

        store.run(body)

    def test_retried_creations_and_deletions_change_nothing(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record("made")
            first = await s.create_study(namespace, rec, request_id=rid("c"))
            retry = make_record("made")  # what a retry of the call builds: new uid, new time
            got = await s.create_study(namespace, retry, request_id=rid("c"))
            assert got == first and got.uid == rec.uid
            with pytest.raises(AlreadyExists):
                await s.create_study(namespace, make_record("made"), request_id=rid("other"))
            with pytest.raises(AlreadyExists):
                await s.create_study(namespace, make_record("made"))
            queued = Trial(0, TrialState.WAITING, {"lr": 0.5}, create_time=1.0)
            t1 = await s.create_trial(namespace, "made", queued, request_id=rid("t"), now=1.0)
            t2 = await s.create_trial(namespace, "made", queued, request_id=rid("t"), now=2.0)
            assert t1 == t2 and (await s.get_study(namespace, "made")).trial_count == 1
            await s.delete_study(namespace, "made", request_id=rid("d"), now=3.0)
            await s.create_study(namespace, make_record("made"))
            await s.delete_study(namespace, "made", request_id=rid("d"), now=4.0)  # a retry
            assert (await s.get_study(namespace, "made")).trial_count == 0  # still there
            with pytest.raises(NotFound):
                await s.delete_study(namespace, "gone", request_id=rid("d"), now=4.0)
            await s.delete_study(namespace, "made", request_id=rid("d"), now=500.0)
            with pytest.raises(NotFound):
                await s.get_study(namespace, "made")

        store.run(body)

    def test_a_request_id_replayed_with_another_payload_is_refused_and_changes_nothing(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            rec = make_record("fp")
            made = await s.create_study(namespace, rec, request_id=frid("c", "A"))
            await mismatch(
                s.create_study(namespace, make_record("fp"), request_id=frid("c", "B")),
                "CreateStudy",
            )
            assert (
                await s.create_study(namespace, make_record("fp"), request_id=frid("c", "A"))
                == made
            )
            # An ask, answered in two steps: a retry with another payload is neither replayed...
            first = await claim(s, namespace, rec, 2, request_id=frid("a", "A", "a1"), now=1.0)
            handed = await commit(
                s, namespace, rec, first, request_id=frid("a", "A", "a1"), now=1.0
            )
            await mismatch(claim(s, namespace, rec, 2, request_id=frid("a", "B", "a2")), "Suggest")
            again = await claim(s, namespace, rec, 2, request_id=frid("a", "A", "a3"), now=2.0)
            assert again.replayed and [t.number for t in again.trials] == [t.number for t in handed]
            # ... nor taken over while in progress, nor after its claim lapsed.
            busy = await claim(
                s, namespace, rec, 1, request_id=frid("b", "A", "b1"), now=3.0, ttl=5
            )
            assert busy.indices == [2]
            await mismatch(
                claim(s, namespace, rec, 1, request_id=frid("b", "B", "b2"), now=4.0), "Suggest"
            )
            await mismatch(
                claim(s, namespace, rec, 1, request_id=frid("b", "B", "b2"), now=20.0), "Suggest"
            )
            # A tell with another outcome, an import with other parameters, a deletion.
            number = handed[0].number

            async def tell(loss: float, fingerprint: str) -> Trial:
                return await s.complete_trial(
                    namespace,
                    rec.study_id,
                    number,
                    values={"loss": loss, "acc": 0.0},
                    failure_reason=None,
                    metadata={},
                    now=22.0,
                    score=loss,
                    request_id=frid("t", fingerprint),
                )

            told = await tell(0.5, "A")
            await mismatch(tell(0.9, "B"), "CompleteTrial")
            assert (
                await tell(0.5, "A") == told == await s.get_trial(namespace, rec.study_id, number)
            )
            queued = Trial(0, TrialState.WAITING, {"lr": 0.5}, create_time=1.0)
            made_trial = await s.create_trial(
                namespace, rec.study_id, queued, request_id=frid("ct", "A"), now=23.0
            )
            other = Trial(0, TrialState.WAITING, {"lr": 0.25}, create_time=1.0)
            await mismatch(
                s.create_trial(
                    namespace, rec.study_id, other, request_id=frid("ct", "B"), now=24.0
                ),
                "CreateTrial",
            )
            count = (await s.get_study(namespace, rec.study_id)).trial_count
            assert count == made_trial.number == handed[-1].number + 1
            assert (await s.best_trial(namespace, rec.study_id)) == told
            await s.delete_study(namespace, "fp", request_id=frid("d", "A"), now=25.0)
            again_rec = make_record("fp")
            await s.create_study(namespace, again_rec)
            await mismatch(
                s.delete_study(namespace, "fp", request_id=frid("d", "B"), now=26.0), "DeleteStudy"
            )
            await s.delete_study(namespace, "fp", request_id=frid("d", "A"), now=26.0)  # a retry
            assert (await s.get_study(namespace, "fp")).uid == again_rec.uid  # still there

        store.run(body)

    def test_request_ids_without_a_fingerprint_are_checked_by_id_alone(
        self, store: StoreHarness, namespace: str
    ) -> None:
        async def body(s: Store) -> None:
            # Records written without one (as before fingerprints existed) answer any payload, and
            # a call without one is answered by any record.
            rec = make_record("old")
            made = await s.create_study(namespace, rec, request_id=rid("c"))
            retry = await s.create_study(namespace, make_record("old"), request_id=frid("c", "B"))
            assert retry == made
            first = await claim(s, namespace, rec, 1, request_id=rid("a", "a1"), now=1.0)
            (trial,) = await commit(s, namespace, rec, first, request_id=rid("a", "a1"), now=1.0)
            again = await claim(s, namespace, rec, 1, request_id=frid("a", "B", "a2"), now=2.0)
            assert again.replayed and [t.number for t in again.trials] == [trial.number]
            queued = Trial(0, TrialState.WAITING, {"lr": 0.5}, create_time=1.0)
            made_trial = await s.create_trial(
                namespace, rec.study_id, queued, request_id=frid("ct", "A"), now=3.0
            )
            replayed = await s.create_trial(namespace, rec.study_id, queued, request_id=rid("ct"))
            assert replayed == made_trial

        store.run(body)
