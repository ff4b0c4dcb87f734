"""Preprocessing recipes: named ``ColumnTransformer`` builders for column roles."""

from mlfactory.preprocessing._recipes import (
    RECIPES,
    SKEW_THRESHOLD,
    build_recipe,
    detect_skewed,
    list_recipes,
)

__all__ = ["RECIPES", "SKEW_THRESHOLD", "build_recipe", "detect_skewed", "list_recipes"]
