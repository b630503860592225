package org.fedcart.core;

/**
 * Proves a downloaded model runs before it replaces the last good one. On Android this loads
 * it into LiteRT, checks tensor shapes against the metadata and runs one inference.
 */
public interface ModelValidator {
    void validate(LoadedModel candidate) throws InvalidModelException;
}
