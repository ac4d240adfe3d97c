"""Out-of-domain detection: does an image look like a base model's meta-training data?"""

from models.domain.detector import (
    DomainConfig,
    DomainDetector,
    Gaussian,
    Verdict,
    domain_path_of,
    load_domain,
    pixel_stats,
    save_domain,
)
from models.domain.fit import fit_domain

__all__ = [
    "DomainConfig",
    "DomainDetector",
    "Gaussian",
    "Verdict",
    "domain_path_of",
    "fit_domain",
    "load_domain",
    "pixel_stats",
    "save_domain",
]
