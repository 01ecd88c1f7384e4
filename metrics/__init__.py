"""Automated report-generation metrics: finding-label F1, kappa, AUC, BLEU, ROUGE-L, with CIs."""
