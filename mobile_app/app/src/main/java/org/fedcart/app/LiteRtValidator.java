package org.fedcart.app;

import org.fedcart.core.InvalidModelException;
import org.fedcart.core.LoadedModel;
import org.fedcart.core.ModelMetadata;
import org.fedcart.core.ModelValidator;
import org.fedcart.core.Postprocessor;
import org.fedcart.core.Preprocessor;

/**
 * Proves a downloaded model works on this phone before it replaces the last good one: it must
 * load in LiteRT, match its metadata's tensor shapes and give finite probabilities for a real
 * input row.
 */
final class LiteRtValidator implements ModelValidator {
    @Override
    public void validate(LoadedModel candidate) throws InvalidModelException {
        ModelMetadata metadata = candidate.metadata();
        float[] row = new Preprocessor(metadata.profiles(), metadata.categories()).encode(1, metadata.profiles().get(0));
        try (TfliteModel model = TfliteModel.open(candidate)) {
            new Postprocessor(metadata.categories()).rank(model.predict(row));
        } catch (IllegalArgumentException | IllegalStateException e) {
            throw new InvalidModelException(e.getMessage(), e);
        }
    }
}
