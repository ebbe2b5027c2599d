"""Vertebral fracture detection in CT: the dual-pathway 3D CNN (Nicolaes et al.) and the conditioned VAE
(Husseini et al.) with their comparison models."""

METHODS = {
    "dual-pathway-3d": ("baselines.fracture.dual_pathway", {"variant": "3d"}),
    "dual-pathway-1slice": ("baselines.fracture.dual_pathway", {"variant": "1slice"}),
    "dual-pathway-5slices": ("baselines.fracture.dual_pathway", {"variant": "5slices"}),
    "conditioned-vae": ("baselines.fracture.vae", {"model": "conditioned-vae"}),
    "vae": ("baselines.fracture.vae", {"model": "vae"}),
    "autoencoder-classifier": ("baselines.fracture.vae", {"model": "autoencoder"}),
    "encoder-classifier": ("baselines.fracture.vae", {"model": "encoder"}),
}
