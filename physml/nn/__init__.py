"""Neural-network building blocks shared by the models: MLPs, convolutional fields, FNO, moment filters."""
