from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class DataCategory(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATA_CATEGORY_UNSPECIFIED: _ClassVar[DataCategory]
    DATA_CATEGORY_NAME: _ClassVar[DataCategory]
    DATA_CATEGORY_IMAGE: _ClassVar[DataCategory]
    DATA_CATEGORY_VOICE: _ClassVar[DataCategory]
    DATA_CATEGORY_OPINIONS: _ClassVar[DataCategory]
    DATA_CATEGORY_BIOGRAPHY: _ClassVar[DataCategory]
    DATA_CATEGORY_HOMETOWN: _ClassVar[DataCategory]
    DATA_CATEGORY_EMPLOYMENT_HISTORY: _ClassVar[DataCategory]

class Purpose(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PURPOSE_UNSPECIFIED: _ClassVar[Purpose]
    PURPOSE_MARKETING: _ClassVar[Purpose]
    PURPOSE_ADVERTISING: _ClassVar[Purpose]
    PURPOSE_PERSONALISED_ADVERTISING: _ClassVar[Purpose]
    PURPOSE_DIRECT_MARKETING: _ClassVar[Purpose]
    PURPOSE_SOCIAL_MEDIA_MARKETING: _ClassVar[Purpose]
    PURPOSE_PUBLIC_RELATIONS: _ClassVar[Purpose]
    PURPOSE_RECRUITMENT: _ClassVar[Purpose]
    PURPOSE_POLITICAL_CAMPAIGN: _ClassVar[Purpose]
    PURPOSE_AI_MODEL_TRAINING: _ClassVar[Purpose]
    PURPOSE_RESEARCH_AND_DEVELOPMENT: _ClassVar[Purpose]
    PURPOSE_ACADEMIC_RESEARCH: _ClassVar[Purpose]
    PURPOSE_COMMERCIAL_RESEARCH: _ClassVar[Purpose]
    PURPOSE_NON_COMMERCIAL_RESEARCH: _ClassVar[Purpose]

class Medium(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MEDIUM_UNSPECIFIED: _ClassVar[Medium]
    MEDIUM_ONLINE: _ClassVar[Medium]
    MEDIUM_SOCIAL: _ClassVar[Medium]
    MEDIUM_PRINT: _ClassVar[Medium]
    MEDIUM_TV: _ClassVar[Medium]
    MEDIUM_RADIO: _ClassVar[Medium]
    MEDIUM_OUT_OF_HOME: _ClassVar[Medium]
    MEDIUM_IN_APP: _ClassVar[Medium]
    MEDIUM_EMAIL: _ClassVar[Medium]
    MEDIUM_PODCAST: _ClassVar[Medium]
    MEDIUM_CINEMA: _ClassVar[Medium]
DATA_CATEGORY_UNSPECIFIED: DataCategory
DATA_CATEGORY_NAME: DataCategory
DATA_CATEGORY_IMAGE: DataCategory
DATA_CATEGORY_VOICE: DataCategory
DATA_CATEGORY_OPINIONS: DataCategory
DATA_CATEGORY_BIOGRAPHY: DataCategory
DATA_CATEGORY_HOMETOWN: DataCategory
DATA_CATEGORY_EMPLOYMENT_HISTORY: DataCategory
PURPOSE_UNSPECIFIED: Purpose
PURPOSE_MARKETING: Purpose
PURPOSE_ADVERTISING: Purpose
PURPOSE_PERSONALISED_ADVERTISING: Purpose
PURPOSE_DIRECT_MARKETING: Purpose
PURPOSE_SOCIAL_MEDIA_MARKETING: Purpose
PURPOSE_PUBLIC_RELATIONS: Purpose
PURPOSE_RECRUITMENT: Purpose
PURPOSE_POLITICAL_CAMPAIGN: Purpose
PURPOSE_AI_MODEL_TRAINING: Purpose
PURPOSE_RESEARCH_AND_DEVELOPMENT: Purpose
PURPOSE_ACADEMIC_RESEARCH: Purpose
PURPOSE_COMMERCIAL_RESEARCH: Purpose
PURPOSE_NON_COMMERCIAL_RESEARCH: Purpose
MEDIUM_UNSPECIFIED: Medium
MEDIUM_ONLINE: Medium
MEDIUM_SOCIAL: Medium
MEDIUM_PRINT: Medium
MEDIUM_TV: Medium
MEDIUM_RADIO: Medium
MEDIUM_OUT_OF_HOME: Medium
MEDIUM_IN_APP: Medium
MEDIUM_EMAIL: Medium
MEDIUM_PODCAST: Medium
MEDIUM_CINEMA: Medium
