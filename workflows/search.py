"""The search attributes a video workflow carries, so the Temporal Web UI can find and filter
videos by topic, owner, stage, quality and model (e.g. `T2mStage="rendering"`)."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from t2m.vocabulary.request import VideoRequest

SA_TOPIC = SearchAttributeKey.for_text("T2mTopic")
SA_OWNER = SearchAttributeKey.for_keyword("T2mOwner")
SA_STAGE = SearchAttributeKey.for_keyword("T2mStage")
SA_QUALITY = SearchAttributeKey.for_keyword("T2mQuality")
SA_MODEL = SearchAttributeKey.for_keyword("T2mModel")
SEARCH_ATTRIBUTES: dict[str, IndexedValueType.ValueType] = {
    SA_TOPIC.name: IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
    SA_OWNER.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SA_STAGE.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SA_QUALITY.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SA_MODEL.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
}


def search_attributes(req: VideoRequest) -> TypedSearchAttributes:
    """What the Web UI filters a new video workflow by."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(SA_TOPIC, req.topic),
            SearchAttributePair(SA_OWNER, req.owner),
            SearchAttributePair(SA_STAGE, "queued"),
            SearchAttributePair(SA_QUALITY, req.quality),
            SearchAttributePair(SA_MODEL, req.model),
        ]
    )
